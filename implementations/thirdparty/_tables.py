"""How long an adapter has a library build the table it keeps (cos/sin or complex rows).

A model builds its table once and keeps it; the adapters do too, built for the first call's
positions and rebuilt longer only when a later call needs more rows. Rounding the length up
to a multiple of 4096 keeps rebuilds rare. The reproductions inline :func:`table_length`
(``inspect.getsource``), so it stays plain Python with no imports.
"""

from __future__ import annotations


def table_length(needed: int) -> int:
    """Rows of a table that holds positions < ``needed``: a multiple of 4096 (at least 4096)."""
    return max(4096, -(-needed // 4096) * 4096)
