"""The Kubernetes-compatible API over HTTP, split by concern:

- discovery.py  /version, /api, /apis, /openapi/v3 (openapi.py builds the documents)
- routing.py    URL → resource target
- verbs.py      get, list, create, update, delete, and `handle` (the dispatcher)
- patch.py      merge / JSON / strategic merge patch, server-side apply
- watch.py      watch streams
- tables.py     Table answers for kubectl get
- body.py       request bodies and write options; protobuf.py the one protobuf message kubectl sends

Semantics live below, in hub.registry; this package translates HTTP.
"""

from hub.web.kube.discovery import router
from hub.web.kube.verbs import handle

__all__ = ["handle", "router"]
