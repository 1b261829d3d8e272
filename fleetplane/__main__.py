"""`python -m fleetplane ...` is the `fleetplane` command."""

from fleetplane.cli import main

if __name__ == "__main__":  # not when a multiprocessing child re-imports the main module
    main()
