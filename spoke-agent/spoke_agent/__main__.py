"""`python -m spoke_agent --hub URL ...`: the same command as `fleetplane agent` (options parsed
by spoke_agent.standalone, without typer's pydantic-based parser)."""

from .standalone import main

main()
