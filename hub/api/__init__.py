"""The Kubernetes-compatible API and the REST API."""
