"""The bottom layer: the fleetplane.io/v1alpha1 wire types (`v1alpha1`) and every well-known
name (`names`). Imported by the hub, the placement engine and the spoke agent; imports none
of them (pydantic only)."""
