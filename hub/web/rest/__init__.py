"""The REST API under /v1: `routes` (the endpoints) and `views` (their pydantic answers)."""
