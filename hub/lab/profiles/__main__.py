"""`python -m hub.lab.profiles SPOKE PROFILE... [--region R]`: print Nodes as a YAML List."""

from hub.lab.profiles import main

main()
