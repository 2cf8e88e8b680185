"""No-op implementations: ``rope`` returns x itself, ``rope_qk`` returns (q, k).

Timed like any implementation, they measure the harness's floor in each framework: the
Python call, the synchronisation and the timer, with no work at all. No real implementation
can be faster than its framework's no-op; a case near the floor is bound by overhead, not by
memory. They are not RoPE (the conformance checks would fail them), so they are benchmark
targets only: ``noop-numpy``, ``noop-torch``, ``noop-jax``, ``noop-tensorflow``.
"""

from __future__ import annotations

from typing import Any


class NoopRope:
    """Returns its inputs unchanged, in ``framework``."""

    device = "cpu"

    def __init__(self, framework: str) -> None:
        self.framework = framework

    def __repr__(self) -> str:
        return f"NoopRope({self.framework!r})"

    def rope(self, x: Any, positions: Any, spec: Any) -> Any:
        return x

    def rope_qk(self, q: Any, k: Any, positions: Any, spec: Any) -> tuple[Any, Any]:
        return q, k


NUMPY = NoopRope("numpy")
TORCH = NoopRope("torch")
JAX = NoopRope("jax")
TENSORFLOW = NoopRope("tensorflow")

# name -> (target, the module it needs)
TARGETS: dict[str, tuple[str, str]] = {
    "noop-numpy": ("rope_suite.benchmarks.noop:NUMPY", "numpy"),
    "noop-torch": ("rope_suite.benchmarks.noop:TORCH", "torch"),
    "noop-jax": ("rope_suite.benchmarks.noop:JAX", "jax"),
    "noop-tensorflow": ("rope_suite.benchmarks.noop:TENSORFLOW", "tensorflow"),
}
