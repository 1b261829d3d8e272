"""`python -m spoke_agent --hub URL ...`: the same command as `fleetplane agent`."""

from .cli import main

main()
