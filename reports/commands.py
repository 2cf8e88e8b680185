"""Subcommands for benchmarks and reports (``bench``, ``report``, ``compare``), wired into
``rope-suite`` by :func:`add_commands`; ``RUN_STEPS`` extend the main job (``rope-suite run``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

RUN_STEPS: list[tuple[str, Callable[[], int]]] = []


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the ``rope-suite`` parser."""
