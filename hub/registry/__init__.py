"""The registry: the object lifecycle (lifecycle.py) with the resource table (resources.py),
validation, field ownership (fieldmanager.py), selectors and access rules (access.py). Used by
the HTTP surfaces and the controllers alike; below it, the store holds all SQL."""
