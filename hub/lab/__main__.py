"""`python -m hub.lab up|down|status` (same as `fleetplane lab ...`)."""

from hub.lab.cli import lab_app

lab_app(prog_name="fleetplane lab")
