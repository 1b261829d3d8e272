"""Import the agent's libraries without the optional extras they pull in by themselves.

Two of the agent's dependencies import, when they happen to be installed, modules the agent
never uses, and each costs RSS for the life of the process (measured in one process,
`bench/agent`, docs/agent.md "Footprint"):

- `httpx` imports its command-line client (`httpx._main`: click, rich, pygments), about 6 MiB;
  its `__init__` falls back to a stub `httpx.main` when that import fails.
- `kopf` imports the `kubernetes` client (about 14 MiB), `kubernetes_asyncio` and `pykube`, only
  to recognise their model objects (`kopf.adopt`) and to offer default login handlers. The agent
  passes plain dicts and registers its own login handler, and kopf treats each as not installed
  when its import fails.

`without(...)` makes those modules unimportable while the import runs (a `None` entry in
`sys.modules`, which Python documents as "import raises ImportError"), then removes the entries
again, so code that imports them later in the same process (tests, a hub running simulated
agents) still can. A module imported before is left alone: nothing is saved, nothing breaks.
While the block runs, another thread importing one of those modules for the first time would
get ImportError; the agent imports kopf and httpx before it starts any thread of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

HTTPX_EXTRAS = ("httpx._main",)
KOPF_EXTRAS = ("kubernetes", "kubernetes_asyncio", "pykube")


@contextmanager
def without(*modules: str) -> Iterator[None]:
    """While the block runs, importing any of `modules` (not imported yet) raises ImportError."""
    blocked = [m for m in modules if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for m in blocked:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]
