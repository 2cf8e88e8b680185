"""Diagnosed deviations: what an adapter's author knows about the failures its library shows.

The checks find failures; they cannot say *why* in the library's terms. An adapter may declare
its library's known deviations in an optional ``deviations`` sequence of :class:`Deviation`:
each names the library's own code, classifies the difference, and says in one sentence what is
wrong. ``rope-suite findings`` files every failing (or observed) case of a third-party target
under the first deviation that ``matches`` it; a case no deviation matches is a finding of its
own, "not yet diagnosed", so nothing the suite found is dropped, and a declared deviation that
no case shows any more is reported as not reproduced, so a diagnosis cannot go stale silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

KINDS: dict[str, str] = {
    "bug": "the library's result is wrong for what it claims to compute",
    "precision choice": "the library computes in a precision below standard practice (float32 angles)",
    "different semantics": "the library computes something else under the same name",
    "stateful by design": "the result depends on earlier calls (a cache or a grown state), as the library intends",
    "in place by design": "the library writes its result into its inputs, as the library intends",
}
"""A deviation's class, with what it means (the findings report prints it)."""


@dataclass(frozen=True)
class Deviation:
    """One diagnosed difference between a library and the spec.

    name: kebab-case, unique per adapter (``dynamic-is-not-ntk``). kind: a key of KINDS.
    summary: what is wrong, one sentence, in terms the library's maintainer recognises.
    where: the library's own file and function (``keras_hub/src/layers/modeling/rotary_embedding.py:
    RotaryEmbedding._get_inverse_freq``). matches: True for a case record (the dict ``rope-suite
    check --json`` writes: check, spec, dtype, pattern, status, reason, property) it explains.
    upstream: an issue or PR that reports it, when there is one.
    """

    name: str
    kind: str
    summary: str
    where: str
    matches: Callable[[Mapping[str, Any]], bool]
    upstream: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Deviation {self.name!r}: kind={self.kind!r} is invalid: allowed {', '.join(KINDS)}")


def rope_type(record: Mapping[str, Any]) -> str | None:
    """The case's scaling rope_type (None for no scaling): for ``matches`` predicates."""
    return ((record.get("spec") or {}).get("scaling") or {}).get("rope_type")


def axis_kind(record: Mapping[str, Any]) -> str | None:
    """The case's multi-axis kind ("mrope", "axial2d") or None: for ``matches`` predicates."""
    return ((record.get("spec") or {}).get("multi_axis") or {}).get("kind")
