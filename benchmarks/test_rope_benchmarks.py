"""The benchmark: one pytest-benchmark test per implementation x case (parametrized by ``plugin.py``).

For each case: inputs are built and made resident, the first call is timed alone (compile
time), warm-up calls estimate one call's time, pytest-benchmark times ``rounds`` x
``iterations`` synchronised calls (``benchmark.pedantic``) and the same framework's copy of
the same tensors is timed the same way (the roofline: one copy before each round out of the
cache, else its own rounds after; ``timing.alternate_copy``), peak memory is read from the
framework's allocator over one more call, the work with the data in the cache is timed on two
cuts of the case (``timing.work_in_cache``: what bounds it), and on a CUDA device CUDA-event
and CUDA-graph figures are added. Everything goes into ``benchmark.extra_info`` (so pytest-benchmark's JSON
holds it) and, converted to results rows, into the JSON Lines stream at once.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from rope_suite.conformance.subject import LoadError, Subject
from rope_suite.reports.machine import available_memory_bytes, last_level_cache_bytes
from rope_suite.reports.results import empty_row, rows_from_benchmark

from .cases import BenchCase, memory_needed
from .timing import SETTINGS, Timed, TooSlow, alternate_copy, skip_reason, work_in_cache


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _work(subject: Subject, case: BenchCase, kind: str, profile: str, llc: int | None) -> dict[str, Any] | None:
    """The work in the cache (``timing.work_in_cache``), or ``{"reason": why not}``: a no-op
    does none; the quick profile times it for the first-party implementations only (the
    headline's cases), the full profile for every implementation."""
    if kind == "noop":
        return None
    if profile == "quick" and kind != "first-party":
        return {"reason": "the quick profile times the work in the cache of first-party implementations only"}
    try:
        return work_in_cache(subject, case, llc)
    except Exception as err:  # the case's own figures stand; the row says why this one is missing
        return {"reason": f"{type(err).__name__}: {err}"}


def test_rope(benchmark, bench, bench_target: str, bench_case: str) -> None:
    target, case = bench.targets[bench_target], bench.cases[bench_case]
    benchmark.group = case.id
    if target.unavailable:
        reason = target.unavailable
        bench.append(empty_row(bench.base_row(target, case, None), "skipped", reason))
        pytest.skip(reason)
    try:
        subject = bench.subject(target)
    except LoadError as err:
        bench.append(empty_row(bench.base_row(target, case, None), "error", f"cannot load: {err}"))
        raise
    base = bench.base_row(target, case, subject)
    reason = skip_reason(subject, case, target.record)
    available = available_memory_bytes()
    if reason is None and available is not None and memory_needed(case) > 0.6 * available:
        reason = f"needs about {_gib(memory_needed(case))}; {_gib(available)} of memory available"
    if reason:
        bench.append(empty_row(base, "skipped", reason))
        pytest.skip(reason)
    try:
        timed = Timed(subject, case, SETTINGS[bench.profile])
        try:
            rounds, iterations = timed.plan(timed.warm_up())
        except TooSlow as slow:
            bench.append(empty_row(base, "skipped", str(slow)))
            pytest.skip(str(slow))
        llc = last_level_cache_bytes()
        alternate = alternate_copy(case, iterations, llc)
        benchmark.pedantic(timed.call, rounds=rounds, iterations=iterations,
                           setup=timed.copy_round if alternate else None)
        peak, method = timed.peak_memory()
        benchmark.extra_info.update({
            "row": base, "bytes_moved": case.bytes_moved(), "tensor_bytes": case.tensor_bytes(),
            "first_call_s": timed.first_call_s, "copy": timed.time_copy(),
            "peak_memory_bytes": peak, "peak_memory_method": method,
            "timings": timed.cuda_timings(rounds)})
        timed = None
        gc.collect()
        benchmark.extra_info["in_cache"] = _work(subject, case, base["kind"], bench.profile, llc)
    except Exception as err:
        bench.append(empty_row(base, "error", f"{type(err).__name__}: {err}"))
        raise
    finally:
        timed = None
        gc.collect()
    if benchmark.stats is not None:  # None under --benchmark-disable
        bench.append(*rows_from_benchmark(benchmark.stats.as_dict(include_data=False)))
