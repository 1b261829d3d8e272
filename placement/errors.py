"""Errors the placement engine raises.

Following kopf's split, an error says whether retrying can help: bad input (a negative GPU
count, an unknown GPU model, a dataset nobody defined) never fixes itself, so it is a
permanent error that names the object and the field to correct.
"""

from __future__ import annotations


class PlacementError(Exception):
    """Base class of every error raised by the placement package."""


class PlacementInputError(PlacementError, ValueError):
    """The input is wrong; retrying with the same input gives the same error.

    The message reads like ``Workload "train-a": spec.gpu.models: unknown GPU model "H1000"``
    so a user can go straight to the object and field to fix.
    """

    def __init__(self, kind: str, name: str | None, field: str, message: str) -> None:
        self.kind = kind
        self.name = name
        self.field = field
        self.detail = message
        where = f'{kind} "{name}"' if name else kind
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")
