"""fleetplane.io/v1alpha1 types: the only hub module the agent and placement may import."""
