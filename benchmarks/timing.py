"""Timing one case correctly in each framework.

:class:`Timed` turns (implementation, case) into zero-argument callables that do exactly one
operation and wait for it: inputs are converted and made resident on the device before any
timing; the call includes the framework's synchronisation (``block_until_ready`` for JAX, a
device sync for TensorFlow and for CUDA tensors) and nothing else: no conversion, no host
copy, no allocation the operation itself does not make. The first call (tracing, compilation,
autotuning) is timed on its own and reported as compile time, never mixed into the steady
state. The roofline is the same framework's out-of-place copy of the same tensors, timed the
same way in the same process; see :func:`alternate_copy` for when the two alternate.

What bounds a case is measured too (:func:`work_in_cache`): the operation and the copy timed on
the same case cut to four sizes that stay in the cache, timed in turns, and a line fitted through
the points: a fixed cost per call and a cost per element with no memory traffic to wait for.

On a CUDA device (PyTorch tensors) two more figures are taken: CUDA events around each call
with the L2 cache flushed before it (as ``triton.testing.do_bench`` does), and a CUDA-graph
replay of the calls, which removes the launch overhead.
"""

from __future__ import annotations

import gc
import importlib
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rope_suite.conformance.frameworks import has_autodiff, synchronize
from rope_suite.conformance.subject import Subject

from .cases import BenchCase, resized
from .memory import peak_memory


@dataclass(frozen=True)
class Settings:
    """How long to time a case.

    budget_s: the steady-state time to spend per case (rounds = budget / time per round);
    min_rounds, max_rounds: bounds on that; round_s: iterations per round are chosen so that a
    round lasts about this long (resolves calls of a few microseconds).
    """

    budget_s: float
    min_rounds: int
    max_rounds: int
    round_s: float = 1e-3
    slow_s: float = 0.5  # a call slower than this gets min(3, min_rounds) rounds and one warm-up call
    max_call_s: float = 60.0  # a first call slower than this is reported, not timed further

    def iterations(self, one_call_s: float) -> int:
        """Calls per round for a call of ``one_call_s``: a round of about ``round_s``."""
        return max(1, round(self.round_s / max(one_call_s, 1e-9)))

    def least_rounds(self, one_call_s: float) -> int:
        """The fewest rounds for a call of ``one_call_s``: min(3, min_rounds) if it is slow."""
        return min(3, self.min_rounds) if one_call_s > self.slow_s else self.min_rounds


@contextmanager
def collector_off() -> Iterator[None]:
    """The garbage collector off inside (as pytest-benchmark runs the operation), as it was after."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


SETTINGS: dict[str, Settings] = {"quick": Settings(0.08, 3, 30, slow_s=0.05, max_call_s=20.0),
                                 "full": Settings(1.0, 10, 300)}
IN_CACHE_SETTINGS = Settings(0.1, 7, 100)  # per cut of work_in_cache, timed in turns


class TooSlow(Exception):
    """The first call took longer than Settings.max_call_s: the case is skipped with this reason."""


def stats_of(times: list[float], iterations: int) -> dict[str, float]:
    """pytest-benchmark's statistics (seconds per call) of per-round times of ``iterations`` calls."""
    per_call = [t / iterations for t in times]
    q = statistics.quantiles(per_call, n=4) if len(per_call) > 1 else [per_call[0]] * 3
    return {"min": min(per_call), "max": max(per_call), "mean": statistics.fmean(per_call),
            "stddev": statistics.stdev(per_call) if len(per_call) > 1 else 0.0,
            "median": statistics.median(per_call), "iqr": q[2] - q[0], "q1": q[0], "q3": q[2],
            "rounds": len(per_call), "iterations": iterations}


def copy_function(framework: str, arrays: list[Any]) -> Callable[[], Any]:
    """An out-of-place copy of ``arrays`` in their own framework (the roofline)."""
    if framework == "numpy":
        return lambda: [a.copy() for a in arrays]
    if framework == "torch":
        return lambda: [a.clone() for a in arrays]
    if framework == "jax":
        jax, jnp = importlib.import_module("jax"), importlib.import_module("jax.numpy")
        copy = jax.jit(lambda xs: [jnp.copy(a) for a in xs])
        return lambda: copy(arrays)
    if framework == "tensorflow":
        tf = importlib.import_module("tensorflow")
        return lambda: [tf.raw_ops.DeepCopy(x=a) for a in arrays]
    raise ValueError(f"framework={framework!r} is invalid: no copy for it")


def alternate_copy(case: BenchCase, iterations: int, llc_bytes: int | None) -> bool:
    """Whether one copy is timed before each round of the operation (pytest-benchmark's
    untimed ``setup``) rather than in rounds of its own afterwards.

    Yes when a round is one call and the case's bytes do not fit in the last-level cache (or
    its size is unknown): both then run at memory bandwidth, which on a shared machine drifts
    by tens of percent within minutes, and alternating keeps the roofline under the
    operation's conditions. No when the bytes fit: the operation leaves the cache in its own
    state (an eager implementation's temporaries evict x), so a copy right after it would be
    timed cold instead of at the cache bandwidth that is its roofline. No when a round is
    many short calls: pytest-benchmark only runs ``setup`` with one call per round.
    """
    return iterations == 1 and (llc_bytes is None or case.bytes_moved() > llc_bytes)


def interpreted(name: str) -> str:
    return (f"{name} runs under the Triton interpreter without a CUDA device (TRITON_INTERPRET=1): "
            "its time is not a performance figure")


def skip_reason(subject: Subject, case: BenchCase, record: Any = None) -> str | None:
    """Why this case cannot be timed here, or None."""
    spec = case.shape.spec
    if record is not None and "triton" in record.requires and subject.device != "cuda":
        return interpreted(subject.name)
    reason = subject.unsupported(spec, case.dtype)
    if reason:
        return reason
    if case.mode == "qk" and not subject.has_rope_qk:
        return f"{subject.name} has no rope_qk (fused q+k is optional)"
    if case.direction == "forward+backward" and not has_autodiff(subject.framework):
        return f"{subject.framework} has no autodiff"
    largest = int(case.shape.positions(case.seed).max())
    return subject.beyond_max_position(largest)


@dataclass
class Timed:
    """One case of one implementation, ready to time (see the module docstring)."""

    subject: Subject
    case: BenchCase
    settings: Settings
    first_call_s: float | None = None
    copy_times: list[float] = field(default_factory=list)  # one copy per round of the operation
    _arrays: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        s, case = self.subject, self.case
        tensors, positions, cotangents = case.inputs()
        self._arrays = [s.native(t, case.dtype) for t in tensors]
        self._positions = s.native(positions, "int64")
        self._cotangents = [s.native(g, case.dtype) for g in cotangents]
        synchronize(s.framework, [*self._arrays, self._positions, *self._cotangents], s.device)
        self.raw = self._make_raw()  # one operation, not waited for (CUDA events and graphs)
        self.call = self._sync(self.raw)
        self.copy = self._sync(copy_function(s.framework, self._arrays))

    # --- the callables ---------------------------------------------------------------------
    def _sync(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        framework, device = self.subject.framework, self.subject.device
        return lambda: synchronize(framework, fn(), device)

    def _forward(self) -> Callable[..., Any]:
        obj, spec, pos = self.subject.obj, self.case.shape.spec, self._positions
        if self.case.mode == "qk":
            return lambda q, k: obj.rope_qk(q, k, pos, spec)
        return lambda x: obj.rope(x, pos, spec)

    def _make_raw(self) -> Callable[[], Any]:
        forward, xs, gs = self._forward(), self._arrays, self._cotangents
        if self.case.direction == "forward":
            return lambda: forward(*xs)
        framework = self.subject.framework
        if framework == "torch":
            torch = importlib.import_module("torch")
            leaves = [x.detach().requires_grad_(True) for x in xs]

            def step() -> Any:
                out = forward(*leaves)
                return torch.autograd.grad(out if isinstance(out, tuple) else (out,), leaves, gs)
        elif framework == "jax":
            jax = importlib.import_module("jax")

            def step() -> Any:
                out, pullback = jax.vjp(forward, *xs)
                return pullback(tuple(gs) if isinstance(out, tuple) else gs[0])
        elif framework == "tensorflow":
            tf = importlib.import_module("tensorflow")

            def step() -> Any:
                with tf.GradientTape() as tape:
                    for x in xs:
                        tape.watch(x)
                    out = forward(*xs)
                targets, grads = (list(out), gs) if isinstance(out, tuple) else (out, gs[0])
                return tape.gradient(targets, xs, output_gradients=grads)
        else:
            raise ValueError(f"{framework} has no autodiff")
        return step

    # --- timing ------------------------------------------------------------------------------
    def warm_up(self) -> float:
        """The first call (compilation included) timed alone, then warm-up calls; returns the
        steady time of one call, estimated from the warm-up."""
        start = time.perf_counter()
        self.call()
        self.first_call_s = time.perf_counter() - start
        if self.first_call_s > self.settings.max_call_s:
            raise TooSlow(f"the first call took {self.first_call_s:.0f} s (> {self.settings.max_call_s:.0f} s "
                          "for this profile): not timed further")
        times, spent = [], 0.0
        enough = 1 if self.first_call_s > self.settings.slow_s else 3
        while len(times) < enough or (spent < self.settings.budget_s / 4 and len(times) < 50):
            start = time.perf_counter()
            self.call()
            times.append(time.perf_counter() - start)
            spent += times[-1]
        return statistics.median(times)

    def plan(self, one_call_s: float) -> tuple[int, int]:
        """(rounds, iterations) for a call of ``one_call_s`` under the settings."""
        st = self.settings
        iterations = st.iterations(one_call_s)
        rounds = round(st.budget_s / (one_call_s * iterations))
        return max(st.least_rounds(one_call_s), min(st.max_rounds, rounds)), iterations

    def copy_round(self) -> None:
        """Time one copy; pytest-benchmark calls this, untimed, before each round of the
        operation when they alternate (:func:`alternate_copy`)."""
        start = time.perf_counter()
        self.copy()
        self.copy_times.append(time.perf_counter() - start)

    def time_copy(self) -> dict[str, float]:
        """Statistics of the same-framework copy of the inputs: of the copies that alternated
        with the operation's rounds, or else timed now, like the operation."""
        if self.copy_times:
            return stats_of(self.copy_times, 1)
        return self.rounds_of(self.copy, warm=2)

    def rounds_of(self, fn: Callable[[], Any], warm: int) -> dict[str, float]:
        """Statistics of ``fn`` after ``warm`` untimed calls, in rounds planned as for the
        operation, with the garbage collector off (as pytest-benchmark runs the operation)."""
        for _ in range(warm):
            fn()
        start = time.perf_counter()
        fn()
        rounds, iterations = self.plan(time.perf_counter() - start)
        times = []
        with collector_off():
            for _ in range(rounds):
                start = time.perf_counter()
                for _ in range(iterations):
                    fn()
                times.append(time.perf_counter() - start)
        return stats_of(times, iterations)

    def peak_memory(self) -> tuple[int | None, str]:
        return peak_memory(self.subject.framework, self.subject.device, self.call)

    def cuda_timings(self, rounds: int) -> list[dict[str, Any]]:
        """CUDA-event and CUDA-graph figures for PyTorch tensors on a CUDA device, else []."""
        if self.subject.framework != "torch" or self.subject.device != "cuda":
            return []
        from .cuda import event_times, graph_times
        out = []
        for timing, measure in (("cuda-events", event_times), ("cuda-graph", graph_times)):
            try:
                out.append({"timing": timing, "status": "ok", "stats": stats_of(*measure(self.raw, rounds))})
            except Exception as err:  # e.g. host work in the call cannot be captured in a graph
                out.append({"timing": timing, "status": "error", "reason": f"{type(err).__name__}: {err}"})
        return out


CUTS = (64, 32, 16, 8)  # work_in_cache's cuts move these fractions of the last-level cache (1/64 ... 1/8)
ASSUMED_LLC_BYTES = 32 * 2**20  # where the machine reports no last-level cache


def in_cache_sizes(llc_bytes: int | None) -> tuple[int, ...]:
    """The bytes moved by the cuts of :func:`work_in_cache`: a 64th, 32nd, 16th and 8th of the
    last-level cache (0.5 to 4 MiB without one): resident in the cache (at a 4th, torch-cpp's
    float32 cost per element and the copy's rose by half and more on this project's 2-core EPYC
    with 32 MiB of L3: memory already shows there), and large enough that a kernel already
    splits them across its threads as it splits the whole case."""
    llc = llc_bytes or ASSUMED_LLC_BYTES
    return tuple(llc // n for n in CUTS)


def robust_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(intercept, slope) of Siegel's repeated-median line through the points: for each point
    the median of its slopes to the others, the median of those; the intercept the median of
    y - slope x. One point of the four off (a thread that woke late in most rounds of one cut)
    leaves it where the other points put it, where a line through two points follows it. A
    slope below 0 (a cost per element under the timer's noise) comes out as 0, an intercept as
    >= 0."""
    if len(set(xs)) < 2:
        raise ValueError(f"xs={xs!r}: a line needs two distinct x")
    per_point = [statistics.median((yj - yi) / (xj - xi) for xj, yj in zip(xs, ys) if xj != xi)
                 for xi, yi in zip(xs, ys)]
    slope = max(statistics.median(per_point), 0.0)
    return max(statistics.median(y - slope * x for x, y in zip(xs, ys)), 0.0), slope


TURN_S = 5e-3  # medians_in_turns: each fn's rounds in one turn last about this long


def medians_in_turns(fns: list[Callable[[], Any]], settings: Settings) -> list[float]:
    """The median time of a call of each of ``fns`` (over rounds of ``iterations`` calls planned
    as for the operation), the fns timed in turns: each turn, an untimed call that brings the
    fn's data back into the cache after the others', then its rounds for about ``TURN_S``. A
    machine that drifts (a neighbour's load, the clock) then shifts every fn alike instead of
    the later ones: timed one after the other, XLA's forward+backward cuts took 2.1-3.5 ms a
    call out of order of their sizes and a line through them predicted 0.25-3.6 times the whole
    case; in turns their times rise with their sizes. A turn of one round was too short: the
    first calls after another fn's ran slower (torch-cpp, a 4 MiB cut: 0.21 against 0.12 ms),
    its allocator handing out blocks the others had left cold. Three untimed calls first
    (compilation); the garbage collector is off while timing; calls slower than
    ``settings.slow_s`` get a few rounds without the untimed call, as :meth:`Timed.plan` gives
    them."""
    one_call = []
    for fn in fns:
        for _ in range(3):
            fn()
        start = time.perf_counter()
        fn()
        one_call.append(time.perf_counter() - start)
    iterations = [settings.iterations(one) for one in one_call]
    per_turn = [max(1, round(TURN_S / (one * n))) for one, n in zip(one_call, iterations)]
    slow = max(one_call) > settings.slow_s  # as Timed.plan: a few rounds, and no call to re-warm the cache
    least = settings.least_rounds(max(one_call))
    times: list[list[float]] = [[] for _ in fns]
    spent, budget = 0.0, settings.budget_s * len(fns)
    with collector_off():
        while min(map(len, times)) < least or (spent < budget and min(map(len, times)) < settings.max_rounds):
            for fn, n, rounds, mine in zip(fns, iterations, per_turn, times):
                if not slow:
                    fn()
                for _ in range(rounds):
                    start = time.perf_counter()
                    for _ in range(n):
                        fn()
                    took = time.perf_counter() - start
                    mine.append(took / n)
                    spent += took
    return [statistics.median(t) for t in times]


def work_in_cache(subject: Subject, case: BenchCase, llc_bytes: int | None) -> dict[str, Any]:
    """What the operation and its copy cost with their data in the cache: the case cut to the
    sizes of :func:`in_cache_sizes` (``cases.resized``), the cuts timed in turns
    (:func:`medians_in_turns`), and the line fitted through the points (:func:`robust_line`):
    ``fixed_s``, the cost of a call, and ``per_element_s``, the cost of an element of q (and
    k), for the operation and for ``copy_fixed_s`` / ``copy_per_element_s`` the copy.

    The work of the whole case, ``fixed_s + per_element_s * case.elements()``, is what it
    would take if it never waited for memory; against the copy's time at the case's size it
    says whether the operation's own instructions or call overhead bound it
    (``reports.bounds``).

    A case that itself fits in the cache (its bytes within ``llc_bytes``) is timed in the same
    turns as its cuts, ``case_s`` (not in the line): where its own rounds ran slower than its
    work allows, this says whether the case is that slow whenever it runs or only was in those
    rounds (torch-cpp decode-b64 float32 on a Zen 3: 93 us in its rounds against 50 us by the
    line)."""
    cuts = [Timed(subject, resized(case, size), IN_CACHE_SETTINGS) for size in in_cache_sizes(llc_bytes)]
    elements = [cut.case.elements() for cut in cuts]
    fits = case.bytes_moved() <= (llc_bytes or ASSUMED_LLC_BYTES)
    whole = [Timed(subject, case, IN_CACHE_SETTINGS).call] if fits else []
    turns = medians_in_turns([cut.call for cut in cuts] + whole, IN_CACHE_SETTINGS)
    ops, case_s = turns[:len(cuts)], turns[-1] if fits else None
    copies = medians_in_turns([cut.copy for cut in cuts], IN_CACHE_SETTINGS)
    out = {"case_elements": case.elements(), "elements": elements, "op_s": ops, "copy_s": copies, "case_s": case_s}
    for name, times in (("", ops), ("copy_", copies)):
        out[f"{name}fixed_s"], out[f"{name}per_element_s"] = robust_line(elements, times)
    return out
