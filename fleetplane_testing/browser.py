"""Debian's headless Chromium as the dashboard's tests and benchmark launch it (Playwright with
the system browser: `make browser` installs it; Playwright never downloads one here)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # The machine's closed network refuses Chromium's own background connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
