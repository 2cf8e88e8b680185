"""One value for every failed check: where the worst element is, got vs wanted, error vs bound.

Every check that finds a wrong number raises :class:`~rope_suite.conformance.checks.CheckFailed`
with a :class:`Mismatch`. It is rendered one way (:meth:`Mismatch.render`, the message a user
reads) and stored as fields (:meth:`Mismatch.fields`, the ``mismatch`` object of a case's JSON
record), so reports and the conformance table read fields, never message text. The format
follows numpy.testing and torch.testing.assert_close: the count over the bound, the worst
element's index and what it is (pair, position), got vs wanted, and the error vs the bound.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .accuracy import SAFETY, Comparison
from .cases import Case


@dataclass(frozen=True)
class Mismatch:
    """check: the check's name; what: the property that failed, as a heading; implementation,
    case_id, spec_name, spec, dtype, shape, pattern, pos_dtype: the call; array: what was
    compared (``x``, ``q``, ``grad``, ``score``, ``pair length``, ``tail``) and units what its
    elements are called; index: the worst element; location: what that element is (``pair 3``,
    ``pass-through tail``, ``query token 2, key token 4``); position: its position ids;
    got / wanted (wanted_label names the expectation) / error / bound: the worst element's
    numbers; over / total: elements over the bound; cause: what the check can name about the
    failure beyond the numbers (``x was modified in place``), one clause per problem."""

    check: str
    what: str
    implementation: str
    case_id: str
    spec_name: str
    spec: dict[str, Any]
    dtype: str
    shape: list[int]
    pattern: str
    pos_dtype: str
    array: str = "x"
    units: str = "elements"
    index: list[int] = field(default_factory=list)
    location: str = ""
    position: Any = None
    got: float | None = None
    wanted: float | None = None
    wanted_label: str = "wanted"
    error: float | None = None
    bound: float | None = None
    over: int = 0
    total: int = 0
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    cause: str = ""

    @classmethod
    def of(cls, check: str, what: str, implementation: str, case: Case, **found: Any) -> Mismatch:
        """A mismatch on ``case``, the call's fields filled in from it."""
        return cls(check=check, what=what, implementation=implementation, case_id=f"{check}/{case.id}",
                   spec_name=case.spec_name, spec=case.spec.to_dict(), dtype=case.dtype, shape=list(case.shape),
                   pattern=case.pattern, pos_dtype=case.pos_dtype, **found)

    @classmethod
    def compared(cls, check: str, what: str, implementation: str, case: Case, cmp: Comparison,
                 positions: np.ndarray | None = None, *, array: str = "x", location: str = "", **more: Any
                 ) -> Mismatch:
        """The mismatch a :class:`Comparison` found; the position of its worst element is read from
        ``positions`` [batch, seq(, axes)] at the element's first two indices."""
        index = list(cmp.worst)
        position = None
        if positions is not None and len(index) >= 2:
            position = positions[index[0], index[1]].tolist()
        return cls.of(check, what, implementation, case, array=array, index=index, location=location,
                      position=position, got=cmp.got, wanted=cmp.want, error=abs(cmp.got - cmp.want), bound=cmp.bound,
                      over=cmp.over, total=cmp.total, max_abs_err=cmp.max_abs_err, max_rel_err=cmp.max_rel_err,
                      **more)

    def headline(self) -> str:
        """One line: the cause if there is one, else the worst element's error against the bound."""
        if self.cause:
            return f"{self.check}: {self.cause}"
        return (f"{self.check}: {self.array}{self.index} got {self.got:.6g}, {self.wanted_label} {self.wanted:.6g}, "
                f"error {self.error:.3g} vs allowed {self.bound:.3g} ({self.over}/{self.total} {self.units} over)")

    def render(self) -> str:
        """The failure message a user reads."""
        lines = [f"{self.what}: {self.implementation} on {self.spec_name}, {self.dtype}, {self.array}{self.shape}, "
                 f"positions {self.pattern} ({self.pos_dtype})",
                 f"  spec: {json.dumps(self.spec)}  (spec {self.spec_name!r})"]
        if self.cause:
            lines.append(f"  cause: {self.cause}")
        if self.total:
            lines.append(f"  mismatched {self.units}: {self.over} / {self.total} "
                         f"({100.0 * self.over / self.total:.1f}%) over the allowed error")
        if self.got is not None:
            where = ", ".join(filter(None, [self.location, None if self.position is None
                                            else f"position {self.position}"]))
            lines.append(f"  worst: {self.array}[{', '.join(map(str, self.index))}]" + (f" ({where})" if where else "")
                         + f": got {self.got:.8g}, {self.wanted_label} {self.wanted:.8g}")
            tail = (f"; max abs err {self.max_abs_err:.3g}" if self.max_abs_err is not None else "") + \
                   (f", max rel err {self.max_rel_err:.3g}" if self.max_rel_err is not None else "")
            practice = f" ({SAFETY:g}x standard practice in {self.dtype})" if self.bound else ""
            lines.append(f"  error {self.error:.3g} vs allowed {self.bound:.3g}{practice}{tail}")
        return "\n".join(lines)

    def fields(self) -> dict[str, Any]:
        """JSON-ready fields (the ``mismatch`` object of the case's record)."""
        return asdict(self)
