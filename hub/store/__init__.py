"""The object store: Kubernetes-style objects as JSON in Postgres, with a commit-ordered event log."""
