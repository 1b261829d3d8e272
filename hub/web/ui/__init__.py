"""The web dashboard at /ui: static HTML, CSS and dependency-free ES modules shipped as package
data (`static/`), served by the hub itself with a strict Content-Security-Policy. The page is
public, like /docs; every number on it comes from the hub's own APIs (`/v1`, the Kubernetes
API's watches, core/v1 events) called from the browser with the user's bearer token, so a team
sees exactly what its token sees on the API (docs/dashboard.md)."""

from hub.web.ui.router import mount

__all__ = ["mount"]
