"""The benchmark harness itself: cases, bytes that must move, timing per framework, skips,
peak memory. Small shapes, no timing assertions beyond sanity (figures are never asserted in a
timed unit test)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rope_suite.benchmarks.noop import NoopRope
from rope_suite.benchmarks.cases import FULL, QUICK, SHAPES, BenchCase, Shape, profile_cases, resized
from rope_suite.benchmarks.targets import bench_targets, kind
from rope_suite.benchmarks.timing import (SETTINGS, Settings, Timed, alternate_copy, in_cache_sizes, medians_in_turns,
                                          robust_line, skip_reason, stats_of, work_in_cache)
from conftest import need
from rope_suite.conformance.presets import PRESETS
from rope_suite.conformance.subject import Subject
from rope_suite.conformance.targets import resolve

ROOT = Path(__file__).resolve().parents[1]
TINY = Shape("tiny", "prefill", "llama2-7b", batch=2, seq=8, heads_q=4, heads_k=2)


def test_case_ids_are_unique_and_profiles_cover_every_phase() -> None:
    for cases in (QUICK, FULL):
        assert len({c.id for c in cases}) == len(cases)
        assert all(c.shape.spec_name in PRESETS for c in cases)
    assert {c.shape.phase for c in FULL} == {"decode", "prefill", "long", "vision", "gqa"}
    assert {c.shape.phase for c in QUICK} == {"decode", "prefill", "vision", "gqa"}
    for cases in (QUICK, FULL):  # every direction and mode, a low-precision dtype, a length series
        assert {c.direction for c in cases} == {"forward", "forward+backward"}
        assert {c.mode for c in cases} == {"q", "qk"} and "bfloat16" in {c.dtype for c in cases}
        assert len({c.shape.seq for c in cases if c.shape.phase == "prefill"}) >= 2
    with pytest.raises(ValueError, match="profile='slow' is invalid"):
        profile_cases("slow")


def test_bytes_that_must_move() -> None:
    decode = BenchCase(SHAPES["decode-b32"], "float32")
    x = 32 * 1 * 32 * 128 * 4
    assert decode.tensor_bytes() == x and decode.bytes_moved() == 2 * x + 32 * 8  # x in, out, int64 positions
    qk = BenchCase(SHAPES["gqa-llama3-2048"], "bfloat16", mode="qk")
    q, k = 2048 * 32 * 128 * 2, 2048 * 8 * 128 * 2
    assert qk.tensor_bytes() == q + k and qk.bytes_moved() == 2 * (q + k) + 2048 * 8
    backward = BenchCase(SHAPES["vision-sam2-32x32"], "float32", "forward+backward")
    x = 4 * 1024 * 256 * 4
    assert backward.bytes_moved() == 2 * (2 * x + 4 * 1024 * 2 * 8)  # twice, positions (x, y) both times


def test_positions_model_the_phase() -> None:
    decode = SHAPES["decode-b64"].positions(seed=1)
    assert decode.shape == (64, 1) and len(set(decode[:, 0])) > 32  # a KV offset per row
    assert decode.min() >= 4096 // 8 and decode.max() < 4096
    grid = SHAPES["vision-sam2-64x64"].positions(seed=1)
    assert grid.shape == (4, 4096, 2) and grid.max() == 63 and tuple(grid[0, 65]) == (1, 1)
    prefill = SHAPES["prefill-512"].positions(seed=1)
    assert np.array_equal(prefill[0], np.arange(512))


def test_cuts_for_the_work_in_the_cache_keep_the_case_and_fit_the_cache() -> None:
    sizes = in_cache_sizes(32 << 20)
    assert sizes == (1 << 19, 1 << 20, 2 << 20, 4 << 20) and in_cache_sizes(None) == sizes
    small = 1 << 20
    for case in FULL:
        for size in sizes:
            cut = resized(case, size)
            assert (cut.dtype, cut.direction, cut.mode, cut.shape.spec_name) == \
                (case.dtype, case.direction, case.mode, case.shape.spec_name)
            assert (cut.shape.heads_q, cut.shape.heads_k, cut.shape.phase) == \
                (case.shape.heads_q, case.shape.heads_k, case.shape.phase)
            per_token = case.bytes_moved() / (case.shape.batch * case.shape.seq)
            assert abs(cut.bytes_moved() - size) <= per_token * (case.shape.grid or (1, 1))[1] / 2 + 1
            positions = cut.shape.positions(cut.seed)
            assert positions.shape[:2] == (cut.shape.batch, cut.shape.seq)
    decode = resized(BenchCase(SHAPES["decode-b64"], "float32"), small)
    assert (decode.shape.batch, decode.shape.seq) == (32, 1)  # decode keeps one token a row
    grid = resized(BenchCase(SHAPES["vision-sam2-64x64"], "float32"), small)
    assert grid.shape.grid == (8, 64) and grid.shape.positions(1)[0, -1].tolist() == [63, 7]  # whole rows


def test_work_in_the_cache_recovers_a_known_cost_per_call_and_per_element() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "plugins"))
    from known_cost import FIXED_S, PER_ELEMENT_S

    target = bench_targets([str(ROOT / "tests" / "plugins" / "known_cost.py")])[0]
    work = work_in_cache(target.load(), BenchCase(SHAPES["prefill-2048"], "float32"), 32 << 20)
    assert work["elements"] == [65536, 131072, 262144, 524288] and work["case_elements"] == 2048 * 32 * 128
    # Sleep overshoots by a roughly constant amount: into the cost per call, not per element.
    assert work["per_element_s"] == pytest.approx(PER_ELEMENT_S, rel=0.15)
    assert FIXED_S * 0.9 < work["fixed_s"] < FIXED_S * 1.5
    assert work["copy_per_element_s"] >= 0 and work["copy_fixed_s"] >= 0
    assert all(op > copy for op, copy in zip(work["op_s"], work["copy_s"]))  # a copy of x is cheaper than a sleep
    assert work["case_s"] is None  # 64 MiB: out of the 32 MiB cache, not timed whole in the turns


def test_a_case_in_the_cache_is_timed_whole_in_the_turns_of_its_cuts() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "plugins"))
    from known_cost import FIXED_S, PER_ELEMENT_S

    target = bench_targets([str(ROOT / "tests" / "plugins" / "known_cost.py")])[0]
    case = BenchCase(SHAPES["prefill-512"], "float32")  # 16 MiB: in the 32 MiB cache
    work = work_in_cache(target.load(), case, 32 << 20)
    assert len(work["op_s"]) == len(work["elements"]) == 4  # the whole case is not a point of the line
    assert work["case_s"] == pytest.approx(FIXED_S + PER_ELEMENT_S * case.elements(), rel=0.15)


def test_the_line_through_the_cuts_is_not_moved_by_one_late_point() -> None:
    xs = [1.0, 2.0, 4.0, 8.0]
    clean = [0.5 + 0.25 * x for x in xs]
    assert robust_line(xs, clean) == pytest.approx((0.5, 0.25))
    for late in range(4):  # one round of one cut twice as slow (a thread that woke late): the same line
        ys = [y * (2 if i == late else 1) for i, y in enumerate(clean)]
        assert robust_line(xs, ys) == pytest.approx((0.5, 0.25)), late
    # a cost per element below the noise: no negative slope, no negative cost per call
    assert robust_line(xs, [3.0, 2.9, 2.8, 2.7]) == (pytest.approx(2.85), 0.0)
    assert robust_line([1.0, 2.0], [-1.0, -2.0]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="two distinct x"):
        robust_line([2.0, 2.0], [1.0, 3.0])


def test_cuts_timed_in_turns_do_not_turn_a_drifting_machine_into_a_cost_per_element() -> None:
    start = time.perf_counter()

    def call() -> None:  # the same work at every "size", on a machine that slows by 10 ms a second
        time.sleep(1e-3 + 0.01 * (time.perf_counter() - start))

    medians = medians_in_turns([call, call, call, call], Settings(0.1, 7, 100))
    drift = 0.01 * (time.perf_counter() - start)  # how much slower the last call was than the first
    assert drift > 2e-3
    # one after the other, the last would be about 3/4 of the drift slower than the first
    assert max(medians) - min(medians) < drift / 4, (medians, drift)


def test_stats_are_per_call() -> None:
    stats = stats_of([4.0, 2.0, 6.0, 8.0], iterations=2)
    assert stats["median"] == 2.5 and stats["min"] == 1.0 and stats["max"] == 4.0 and stats["rounds"] == 4
    assert stats["iqr"] == pytest.approx(stats["q3"] - stats["q1"]) and stats["iterations"] == 2


def test_targets_include_every_registered_implementation_and_the_noops() -> None:
    names = [t.name for t in bench_targets(None)]
    assert {"numpy", "torch-eager", "hf-llama", "noop-numpy", "noop-torch", "noop-jax", "noop-tensorflow"} <= set(names)
    assert [kind(t) for t in bench_targets(["torch-eager", "hf-llama", "noop-torch"])] == \
        ["first-party", "third-party", "noop"]
    assert [t.name for t in bench_targets(["noop"])] == ["noop-numpy", "noop-torch", "noop-jax", "noop-tensorflow"]


def timed(name: str, case: BenchCase) -> Timed:
    target = bench_targets([name])[0]
    if target.missing:
        need(target.missing)
    subject = target.load()
    assert skip_reason(subject, case, target.record) is None
    return Timed(subject, case, SETTINGS["quick"])


def check_floor(name: str) -> None:
    t = timed(name, BenchCase(TINY, "float32"))
    rounds, iterations = t.plan(t.warm_up())
    assert t.first_call_s is not None and rounds >= 3 and iterations >= 1
    copy = t.time_copy()
    assert copy["median"] > 0 and copy["rounds"] >= 3


def test_copy_alternates_with_one_call_rounds_out_of_the_cache() -> None:
    small, large = (BenchCase(SHAPES[name], "float32") for name in ("prefill-512", "prefill-2048"))
    llc = 32 << 20  # 16 MiB and 64 MiB moved
    assert alternate_copy(large, 1, llc) and alternate_copy(large, 1, None) and alternate_copy(small, 1, None)
    assert not alternate_copy(small, 1, llc) and not alternate_copy(large, 5, llc)


def test_copy_alternating_with_the_rounds_is_the_roofline() -> None:
    t = timed("noop-numpy", BenchCase(TINY, "float32"))
    assert t.time_copy()["rounds"] >= 3 and not t.copy_times  # no alternation: the copy's own rounds
    for _ in range(5):  # what pytest-benchmark's setup does before each one-call round
        t.copy_round()
        t.call()
    copy = t.time_copy()
    assert copy["rounds"] == 5 and copy["iterations"] == 1 and copy["median"] == sorted(t.copy_times)[2]


def check_directions(name: str) -> None:
    """Forward q+k, forward+backward q and q+k run; a gradient keeps the cotangent's norm (the
    gradient of a rotation is the inverse rotation)."""
    for direction, mode in (("forward", "qk"), ("forward+backward", "q"), ("forward+backward", "qk")):
        t = timed(name, BenchCase(TINY, "float32", direction, mode))
        outs = t.call()
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        assert [tuple(o.shape) for o in outs] == [(2, 8, 4, 128), (2, 8, 2, 128)][: 2 if mode == "qk" else 1]
        if direction == "forward+backward":
            as_numpy = (lambda a: a.double().numpy()) if name.startswith("torch") else np.asarray
            grad, cot = as_numpy(outs[0]), as_numpy(t._cotangents[0])
            assert np.linalg.norm(grad) == pytest.approx(np.linalg.norm(cot), rel=1e-4)


def isolated(call: str) -> None:
    """Run ``call`` (from this module) in a fresh interpreter: TensorFlow registers LLVM options
    that Triton registers again, so a process that has imported TensorFlow cannot import Triton
    (which the conformance tests later in this session do)."""
    proc = subprocess.run([sys.executable, "-c", f"import test_bench; test_bench.{call}"], cwd=Path(__file__).parent,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(__file__).parent)]),
                               "TF_CPP_MIN_LOG_LEVEL": "3"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize("name", ["noop-numpy", "noop-torch", "noop-jax"])
def test_noop_times_the_floor(name: str) -> None:
    check_floor(name)


@pytest.mark.parametrize("name", ["torch-eager", "jax-jit"])
def test_every_direction_and_mode_runs(name: str) -> None:
    check_directions(name)


def test_tensorflow_floor_directions_and_modes_in_their_own_process() -> None:
    if importlib.util.find_spec("tensorflow") is None:  # not need(): that would import it here
        need("tensorflow")
    isolated("check_floor('noop-tensorflow'); test_bench.check_directions('tensorflow-xla')")


def test_skip_reasons() -> None:
    numpy_target = resolve(["numpy"])[0]
    subject = numpy_target.load()
    assert "numpy has no autodiff" in skip_reason(subject, BenchCase(TINY, "float32", "forward+backward"))
    onnx = resolve(["onnx-reference"])[0]
    if not onnx.missing:
        assert "has no rope_qk" in skip_reason(onnx.load(), BenchCase(TINY, "float32", mode="qk"), onnx.record)
    on_cpu = Subject("triton", NoopRope("torch"))  # not loaded here: see isolated()
    assert "Triton interpreter" in skip_reason(on_cpu, BenchCase(TINY, "float32"), resolve(["triton"])[0].record)


def test_peak_memory_counts_the_output() -> None:
    need("torch")
    case = BenchCase(SHAPES["prefill-512"], "float32")
    for name, method in (("torch-eager", "torch.profiler"), ("numpy", "tracemalloc")):
        peak, how = timed(name, case).peak_memory()
        assert how.startswith(method) and peak >= case.tensor_bytes(), (name, peak, how)


def test_cuda_timing_is_only_taken_on_a_cuda_device() -> None:
    """The CUDA-event and CUDA-graph paths exist; without a GPU they are not taken (and cannot
    run here: no CUDA device on CI)."""
    from rope_suite.benchmarks import cuda

    assert callable(cuda.event_times) and callable(cuda.graph_times) and cuda.GRAPH_CALLS > 1
    assert timed("noop-torch", BenchCase(TINY, "float32")).cuda_timings(3) == []


FAULTS = """
import resource, sys
import jax, jax.numpy as jnp, numpy as np
from rope_suite.conformance.presets import preset
from rope_suite.implementations.jax_rope import JaxRope

spec, rope = preset("llama2-7b"), JaxRope()
x = jnp.asarray(np.ones((1, 4096, 32, 128), np.float32))  # a 64 MiB output
positions = jnp.asarray(np.arange(4096)[None])
for _ in range(5):
    rope.rope(x, positions, spec).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    rope.rope(x, positions, spec).block_until_ready()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_steady_allocator_keeps_a_worker_threads_large_output_mapped() -> None:
    """jax-jit computes on a worker thread; outside glibc's main arena an output over 64 MiB is
    mapped afresh on every call (16,385 page faults a call here) unless every thread shares the
    one arena: the benchmark's steady allocator must time it without those faults, as it times
    the copy. (The heap may still grow once or twice while outputs overlap.)"""
    if importlib.util.find_spec("jax") is None:  # not need(): that would import it here
        need("jax")
    from rope_suite.benchmarks.runner import STEADY_ALLOCATOR

    env = {**os.environ, **STEADY_ALLOCATOR, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    faults = int(proc.stdout.split()[-1])
    assert faults <= 2 * 16385, f"{faults} page faults in 10 calls under {STEADY_ALLOCATOR}"


ALIGNED_REUSE = """
import resource, torch
x = torch.ones(1 << 26)  # 256 MiB, allocated by PyTorch with posix_memalign
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = x.clone()
    names = [str(i) for i in range(50)]  # small allocations between, as any caller makes
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del y
print(*faults)
"""


def test_steady_allocator_reuses_a_freed_aligned_tensor() -> None:
    """A tensor freed and allocated again at the same size gets the same pages back under the
    steady allocator, so only the first of six clones of 256 MiB pays its 65,536 page faults
    (glibc before 2.38 with its thread cache on: every clone, where the small allocations
    between take the aligned block's spare tail)."""
    need("torch")
    from rope_suite.benchmarks.runner import bench_environment

    proc = subprocess.run([sys.executable, "-c", ALIGNED_REUSE], capture_output=True, text=True,
                          env=bench_environment(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    faults = [int(f) for f in proc.stdout.split()]
    assert faults[0] >= 60000, faults  # the first clone maps its pages: the probe sees faults
    assert sum(faults[1:]) <= 65536, f"page faults of six 256 MiB clones: {faults}"


def test_the_callers_glibc_tunables_stay_beside_the_steady_allocators() -> None:
    from rope_suite.benchmarks.runner import STEADY_ALLOCATOR, bench_environment

    env = bench_environment({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"})
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1:" + STEADY_ALLOCATOR["GLIBC_TUNABLES"]
    assert "GLIBC_TUNABLES" not in bench_environment({}, steady_allocator=False)


AFFINITY = """
import os, pathlib, torch
torch.ones(1 << 22).sum()  # an OpenMP parallel region: the team's threads exist from here on
for status in pathlib.Path("/proc/self/task").glob("*/status"):
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
    print(fields["Cpus_allowed_list"].strip())
"""


@pytest.mark.parametrize("bound", [True, False])
def test_bench_processes_bind_their_openmp_threads_to_cores(bound: bool) -> None:
    """The timing processes run with OpenMP threads bound to cores (runner.BOUND_THREADS): each
    thread of torch's team on a core of its own, where unbound they may all float over every
    core (unbound, torch-cpp's smallest SAM 2 cut took three times as long in two fresh
    processes of six on the Zen 4)."""
    from rope_suite.benchmarks.runner import bench_environment, threads_label

    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip(f"this machine gives the process {cores} core: nothing to bind apart")
    env = bench_environment({k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))},
                            bound_threads=bound)
    assert threads_label(env) == ("bound: OMP_PROC_BIND=true" if bound else "os")
    proc = subprocess.run([sys.executable, "-c", AFFINITY], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pinned = [line for line in proc.stdout.split() if "-" not in line and "," not in line]
    if bound:  # the main thread and at least one worker, each on one core, not the same one
        assert len(set(pinned)) >= 2, proc.stdout
    else:
        assert not pinned, proc.stdout
