"""Entry points: the `fleetplane` command (cli) and the demo fleet of `fleetplane up --demo`.

The top layer: it may import every other package; none imports it."""
