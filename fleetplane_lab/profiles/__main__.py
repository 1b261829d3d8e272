"""`python -m fleetplane_lab.profiles SPOKE PROFILE... [--region R]`: print Nodes as a YAML List."""

from fleetplane_lab.profiles import main

main()
