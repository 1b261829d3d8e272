"""HTTP surfaces: the Kubernetes-compatible API (`kube`), the REST API (`rest`), authentication
(`authn`) and the join endpoint (`join`). They decode requests and encode answers; object
semantics are the registry's (hub.registry)."""
