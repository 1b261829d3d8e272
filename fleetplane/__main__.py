"""`python -m fleetplane ...` is the `fleetplane` command."""

from fleetplane.cli import main

main()
