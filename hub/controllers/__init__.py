"""Hub controllers (placement, status, health/failover, deletion) and their registration."""

from __future__ import annotations

from fastapi import FastAPI


def register_controllers(app: FastAPI) -> None:
    from hub.controllers.federation import run_federation

    app.state.controllers.append(run_federation)
