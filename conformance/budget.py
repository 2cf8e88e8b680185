"""Memory budgets: sizes as people write them ("512MiB", "4GB", "25%") and this machine's memory."""

from __future__ import annotations

import os
import re

DEFAULT_BUDGET = "50%"
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


def machine_memory() -> int:
    """Physical memory of this machine in bytes (os.sysconf; 16 GiB where it cannot say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 16 << 30


def parse_bytes(text: str) -> int:
    """``"123456"``, ``"512MiB"``, ``"4GB"`` or ``"25%"`` (of this machine's memory) in bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*(%|[a-z]*)\s*", text.lower())
    if not match or (match[2] != "%" and match[2] not in _UNITS):
        raise ValueError(f"memory budget {text!r} is invalid: give bytes, a size like 512MiB or 4GB, or a percentage")
    number = float(match[1])
    return int(number / 100 * machine_memory()) if match[2] == "%" else int(number * _UNITS[match[2]])


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
