"""`python -m fleetplane_lab up|down|status` (same as `fleetplane lab ...`)."""

from fleetplane_lab.cli import lab_app

lab_app(prog_name="fleetplane lab")
