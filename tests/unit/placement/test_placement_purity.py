"""placement stays pure: no I/O library, and of the project only fleetplane_types (see .importlinter)."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "kopf",
    "kubernetes",
    "psycopg",
    "alembic",
    "hub",
    "spoke_agent",
    "fleetplane",
    "fleetplane_lab",
    "fleetplane_testing",
}
PLACEMENT = Path(__file__).resolve().parents[3] / "placement"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_placement_imports_no_io_library_and_of_the_project_only_the_wire_types() -> None:
    offenders = []
    for path in sorted(PLACEMENT.rglob("*.py")):
        for mod in imported_modules(path):
            root = mod.split(".")[0]
            if root in FORBIDDEN:
                offenders.append(f"{path.relative_to(PLACEMENT.parent)}: {mod}")
    assert offenders == []
