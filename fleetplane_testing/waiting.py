"""The one polling helper of the project's tests, lab and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = 60.0,
    interval: float = 0.25,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll `probe` until it returns something truthy; fail saying what never happened.

    Exceptions of the `retry_on` types count as "not yet" (the last one is reported on
    timeout); any other exception, an AssertionError from the probe included, fails at once.
    The one polling helper of the project's tests and benches."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            got = probe()
        except retry_on as e:
            got, last = None, e
        if got:
            return got
        if time.monotonic() > deadline:
            tail = f" (last error: {last!r})" if last is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting until {what}{tail}")
        time.sleep(interval)
