"""Helpers shared by the doctor's tests."""

from __future__ import annotations

import socket


def dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def by_name(checks) -> dict:
    return {c.name: c for c in checks}
