"""An implementation under test, loaded: calls it through the plug-in contract and enforces it.

The suite hands the implementation native arrays built from NumPy, calls ``rope`` (or
``rope_qk``), and checks the output contract on every call before any number is compared:
a native array, the same shape and dtype as x, every value finite. A violation raises
:class:`ContractViolation` with a one-line diagnosis; an exception from the implementation's
own code becomes :class:`ImplementationError` (``rope() raised ValueError: ...``), and running
out of memory :class:`OutOfMemory`, so a broken plug-in is diagnosed in one line, not a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import accuracy, frameworks
from .frameworks import FRAMEWORKS
from .spec import PARTS, RopeSpec


class ContractViolation(Exception):
    """The implementation broke the plug-in contract (wrong type, shape or dtype, bad attribute)."""


class LoadError(Exception):
    """The target cannot be loaded as a plug-in; the message says why."""


class ImplementationError(Exception):
    """The implementation raised while the suite called it; the message names the call and the error."""


class OutOfMemory(ImplementationError):
    """The implementation ran out of memory (MemoryError, or a framework's out-of-memory error):
    reported as a crash, not as a wrong answer."""


def _is_out_of_memory(err: BaseException) -> bool:
    # torch raises OutOfMemoryError on CUDA and a RuntimeError naming the allocator on the CPU
    return (isinstance(err, MemoryError) or "OutOfMemory" in type(err).__name__
            or "can't allocate memory" in str(err) or "RESOURCE_EXHAUSTED" in str(err))


@dataclass
class Subject:
    """A loaded plug-in object with its display name.

    strict: judge float64 inputs against float64 angles (strict mode) instead of standard
    practice's float32 angles. fresh: makes a new, never-called instance of the plug-in (the
    target loaded again), for the checks that compare a call with the same call made first.
    """

    name: str
    obj: Any
    strict: bool = False
    fresh: Callable[[], Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not callable(getattr(self.obj, "rope", None)):
            raise LoadError(f"{self.name}: rope missing: has no callable rope(x, positions, spec)")
        if not hasattr(self.obj, "framework"):
            raise LoadError(f"{self.name}: framework missing: set framework to one of {', '.join(FRAMEWORKS)}")
        if self.obj.framework not in FRAMEWORKS:
            raise LoadError(f"{self.name}: unknown framework: framework={self.obj.framework!r} is invalid: "
                            f"allowed {', '.join(FRAMEWORKS)}")
        supplied = getattr(self.obj, "supplied", None) or {}
        unknown = [part for part in supplied if part not in PARTS]
        if not isinstance(supplied, dict) or unknown:
            raise LoadError(f"{self.name}: supplied={supplied!r} is invalid: a dict from parts ({', '.join(PARTS)}) "
                            f"to who supplies them" + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else ""))
        frameworks.prepare(self.obj.framework)

    @property
    def supplied(self) -> dict[str, str]:
        """part -> who supplies it, for the parts of RoPE the library leaves to its caller."""
        return dict(getattr(self.obj, "supplied", None) or {})

    def angles(self, dtype: str) -> str:
        """The angle precision a ``dtype`` case is judged against (see :mod:`.accuracy`)."""
        return accuracy.required_angles(dtype, self.strict)

    def for_case(self, spec: RopeSpec) -> Subject:
        """The instance a case calls: the kept one (as inside a model, so caches and in-place
        writes show), or a fresh one when the spec's scaling depends on the call's length
        (dynamic, LongRoPE), so that the case is one model's first call, and its verdict does not
        depend on which cases ran before it. Call order is the ``stateless`` check's to test,
        explicitly (it keeps one instance across its calls)."""
        if spec.sequence_dependent and self.fresh is not None:
            return self.new_instance()
        return self

    def new_instance(self) -> Subject:
        """The same target, loaded afresh: a plug-in that has never been called."""
        if self.fresh is None:
            raise LoadError(f"{self.name}: cannot be loaded afresh (no loader)")
        return Subject(self.name, self.fresh(), self.strict, self.fresh)

    @property
    def framework(self) -> str:
        return self.obj.framework

    @property
    def device(self) -> str:
        return getattr(self.obj, "device", "cpu") or "cpu"

    @property
    def max_position(self) -> int | None:
        """The largest position the implementation takes (optional ``max_position``, e.g. the
        length of its cos/sin cache); None for no limit."""
        limit = getattr(self.obj, "max_position", None)
        return None if limit is None else int(limit)

    def beyond_max_position(self, largest: int) -> str | None:
        """A skip reason when position ``largest`` exceeds the declared max_position, else None."""
        limit = self.max_position
        if limit is not None and largest > limit:
            return f"{self.name} declares max_position={limit}; this case reaches position {largest}"
        return None

    @property
    def has_rope_qk(self) -> bool:
        return callable(getattr(self.obj, "rope_qk", None))

    def unsupported(self, spec: RopeSpec, dtype: str) -> str | None:
        """Why this case cannot run here (a skip reason), or None when it can."""
        cannot = frameworks.cannot_hold(self.framework, dtype)
        if cannot:
            return f"{self.name}: {cannot}"
        if self.device == "cuda" and self.framework == "torch":
            import torch
            if not torch.cuda.is_available():
                return f"{self.name} runs on CUDA and no CUDA device is available"
        supports = getattr(self.obj, "supports", None)
        if supports is not None:
            try:
                answer = supports(spec, dtype)
            except Exception as err:  # a broken supports() is the plug-in's failure, not a skip
                raise ContractViolation(f"{self.name}: supports(spec, {dtype!r}) raised "
                                        f"{type(err).__name__}: {err}") from err
            if not isinstance(answer, (bool, np.bool_)):
                raise ContractViolation(f"{self.name}: supports() returned {answer!r}, not a bool")
            if not answer:
                return f"{self.name} does not support this spec in {dtype} (its supports() says so)"
        return None

    # --- calls ---------------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, where fn is the implementation's code: an exception it raises becomes
        one line naming the call, e.g. ``my_rope.py: rope() raised ValueError: ...``."""
        try:
            return fn(*args)
        except Exception as err:
            kind = OutOfMemory if _is_out_of_memory(err) else ImplementationError
            first_line = (str(err).strip().splitlines() or [""])[0]
            detail = f": {first_line}" if first_line else ""
            raise kind(f"{self.name}: {what} raised {type(err).__name__}{detail}") from err

    def native(self, array: np.ndarray, dtype: str) -> Any:
        return frameworks.to_native(self.framework, array, dtype, self.device)

    def check_output(self, out: Any, like: Any, dtype: str, what: str = "rope") -> np.ndarray:
        """Enforce the output contract and return the output as float64 NumPy."""
        fw = self.framework
        if not frameworks.is_native(fw, out):
            raise ContractViolation(f"{self.name}: {what}() returned {type(out).__module__}."
                                    f"{type(out).__qualname__}, not a {fw} array")
        if tuple(out.shape) != tuple(like.shape):
            raise ContractViolation(f"{self.name}: {what}() returned shape {tuple(out.shape)}, "
                                    f"but x has shape {tuple(like.shape)}")
        got_dtype = frameworks.dtype_name(fw, out)
        if got_dtype != dtype:
            raise ContractViolation(f"{self.name}: {what}() returned dtype {got_dtype}, but x is {dtype}")
        host = self.call(f"{what}()", lambda: frameworks.to_numpy(fw, frameworks.synchronize(fw, out, self.device)))
        bad = ~np.isfinite(host)
        if bad.any():  # finite x gives finite output: every pair is rotated, times a finite factor
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ContractViolation(f"{self.name}: {what}() returned {int(bad.sum())} non-finite values "
                                    f"(first {host[first]} at x{list(first)}) for finite x")
        return host

    def call_rope(self, xn: Any, pn: Any, spec: RopeSpec) -> Any:
        """``rope`` on native arrays, as is (the output contract is the caller's to check)."""
        return self.call("rope()", self.obj.rope, xn, pn, spec)

    def rope(self, x: np.ndarray, positions: np.ndarray, spec: RopeSpec, dtype: str,
             pos_dtype: str = "int64") -> np.ndarray:
        """Call ``rope`` on native copies of (x, positions); the output as float64 NumPy."""
        xn, pn = self.native(x, dtype), self.native(positions, pos_dtype)
        return self.check_output(self.call_rope(xn, pn, spec), xn, dtype)

    def rope_qk(self, q: np.ndarray, k: np.ndarray, positions: np.ndarray, spec: RopeSpec, dtype: str,
                pos_dtype: str = "int64") -> tuple[np.ndarray, np.ndarray]:
        qn, kn, pn = self.native(q, dtype), self.native(k, dtype), self.native(positions, pos_dtype)
        out = self.call("rope_qk()", self.obj.rope_qk, qn, kn, pn, spec)
        if not isinstance(out, tuple) or len(out) != 2:
            raise ContractViolation(f"{self.name}: rope_qk() returned {type(out).__name__}, not a (q, k) tuple")
        return self.check_output(out[0], qn, dtype, "rope_qk q"), self.check_output(out[1], kn, dtype, "rope_qk k")

    def vjp(self, x: np.ndarray, positions: np.ndarray, cotangent: np.ndarray, spec: RopeSpec,
            dtype: str) -> np.ndarray:
        """d<rope(x), g>/dx through the framework's autodiff, as float64 NumPy."""
        xn, pn, gn = self.native(x, dtype), self.native(positions, "int64"), self.native(cotangent, dtype)
        grad = self.call("the gradient of rope()", frameworks.vjp, self.framework,
                         lambda v: self.obj.rope(v, pn, spec), xn, gn)
        if grad is None:
            raise ContractViolation(f"{self.name}: the gradient with respect to x is None "
                                    "(rope() is not differentiable, or detaches x)")
        return self.check_output(grad, xn, dtype, "gradient of rope")
