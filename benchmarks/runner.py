"""``rope-suite bench``: the benchmarks over named targets, each in its own pytest process.

One process per implementation keeps a framework's threads, allocator and compile caches
(and a Keras backend, which is process-global) from touching another's figures, and a crash
inside its own run. Each process appends its rows to the JSON Lines stream as every case
finishes (a progress bar follows it) and writes pytest-benchmark's own JSON; at the end the
pytest-benchmark files are converted into the results document (schema in
:mod:`rope_suite.reports.schema`), with the rows of skipped and failed cases from the stream. An
interrupted run still writes the results of the cases it finished. The processes are followed
by :func:`rope_suite.conformance.process.follow`, as ``rope-suite check``'s are: when this
process stops, by any signal, they stop with it.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from rope_suite.conformance.process import Tail, follow
from rope_suite.reports.machine import fingerprint
from rope_suite.reports.results import derive, document, empty_row, rows_from_pytest_benchmark, write_atomic
from rope_suite.reports.schema import SCHEMA_VERSION, STREAM

from .cases import profile_cases
from .targets import bench_targets, kind
from .timing import interpreted

PLUGIN = "rope_suite.benchmarks.plugin"  # the options and parametrization, named so any directory works
TIMEOUT_S: dict[str, float | None] = {"quick": 900.0, "full": None}
# glibc malloc settings that keep freed memory in the process (no mmap, no trimming): every
# allocation after the warm-up reuses pages already mapped, so neither the operation nor the
# copy pays first-touch page faults. This is the default. With the C library's defaults
# ("--allocator system") an out-of-place operation on tensors above glibc's mmap threshold is
# timed with the kernel mapping and zeroing its fresh output: a page fault per 4 KiB caps it
# near 2-6 GB/s on this project's CI machine whatever the implementation does, and how often
# a framework's own allocator returns memory decides the figure (a torch copy measured 2 GB/s
# in one process and 112 GB/s in another). One arena (MALLOC_ARENA_MAX=1): glibc serves other
# threads from arenas of at most 64 MiB, and mmaps (and munmaps) anything larger whatever
# MALLOC_MMAP_MAX_ says. JAX runs a computation with flops on a worker thread and a copy on the
# caller's, so jax-jit's 128 MiB output paid 32,769 page faults a call while its copy paid none:
# 14-18% of the copy at prefill-8192, 39-42% with one arena. No thread cache (tcache_count=0):
# PyTorch allocates with posix_memalign(64), for which glibc before 2.38 asks its bins for 96
# bytes more than the tensor and gives the spare tail back to the thread cache, where the next
# small allocation takes it. That pins the tensor's block: freed, it is 96 bytes short of the
# next such request, so every call took fresh pages at the heap's top and the freed blocks piled
# up unused (glibc 2.36, a 512 MiB clone: 131,072 page faults and 120-860 ms a call, the heap
# 512 MiB larger each time; without the cache, none from the second call and 33 ms). It costs
# an allocation the cache's fast path (decode-b64 torch-cpp, 22-23 -> 24 us a call; its copy
# 15 us either way).
STEADY_ALLOCATOR: dict[str, str] = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 36),
                                    "MALLOC_TOP_PAD_": str(1 << 28), "MALLOC_ARENA_MAX": "1",
                                    "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}


# OpenMP threads bound to cores (libgomp's OMP_PROC_BIND=true: thread i on place i, the main
# thread included), the default; "--threads os" leaves them to the scheduler. Unbound, on the
# 2-core Zen 4 EPYC, torch-cpp's SAM 2 cut of 65,536 elements took 96-122 us a call in two fresh
# processes of six (31-38 us in the rest; with OMP_WAIT_POLICY=ACTIVE, 94-98 us in five of six);
# bound, in about one process in ten. The rest of that slow state was the kernel's own (one
# angle table that both threads built and read, since replaced by one per thread).
BOUND_THREADS: dict[str, str] = {"OMP_PROC_BIND": "true"}


def threads_label(env: Mapping[str, str]) -> str:
    """How a process with environment ``env`` places its OpenMP threads, for a results file's
    run record: ``bound: OMP_PROC_BIND=...`` or ``os`` (the scheduler's choice)."""
    bind = env.get("OMP_PROC_BIND", "").strip().lower()
    return f"bound: OMP_PROC_BIND={env['OMP_PROC_BIND']}" if bind and bind != "false" else "os"


def bench_environment(base: Mapping[str, str], *, steady_allocator: bool = True,
                      bound_threads: bool = True) -> dict[str, str]:
    """The environment of each target's timing process: ``base`` with TensorFlow's logging
    quieted, the steady allocator (``STEADY_ALLOCATOR``) and bound threads (``BOUND_THREADS``)
    unless turned off."""
    allocator = dict(STEADY_ALLOCATOR) if steady_allocator else {}
    if allocator and base.get("GLIBC_TUNABLES"):  # the caller's tunables stay, ours after them
        allocator["GLIBC_TUNABLES"] = f"{base['GLIBC_TUNABLES']}:{STEADY_ALLOCATOR['GLIBC_TUNABLES']}"
    return {**base, "TF_CPP_MIN_LOG_LEVEL": base.get("TF_CPP_MIN_LOG_LEVEL", "3"), **allocator,
            **(BOUND_THREADS if bound_threads else {})}


def allocator_label(env: Mapping[str, str]) -> str:
    """How a process with environment ``env`` allocates, for a results file's run record:
    ``steady: MALLOC_MMAP_MAX_=0 ...`` (the settings it has) or ``system``."""
    if env.get("MALLOC_MMAP_MAX_") != "0":
        return "system"
    return "steady: " + " ".join(f"{k}={env[k]}" for k in STEADY_ALLOCATOR if k in env)


@dataclass
class Stream:
    """The JSON Lines file the target processes append to, read as it grows."""

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    tail: Tail | None = field(default=None, init=False)  # from the end of the header, once started

    @property
    def log(self) -> Path:
        """Where the target processes' output goes: beside the stream, with .log."""
        return self.path.with_suffix(".log")

    def start(self, header: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(header) + "\n")
        self.tail = Tail(self.path)

    def append(self, rows: list[dict[str, Any]]) -> None:
        with open(self.path, "a") as out:
            out.write("".join(json.dumps(r) + "\n" for r in rows))

    def poll(self) -> list[dict[str, Any]]:
        """Rows appended since the last poll (a line still being written waits)."""
        new = [r for r in self.tail.read() if r.get("schema") != STREAM]
        self.rows.extend(new)
        return new


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "target"


def pytest_command(target: str, profile: str, stream: Path, run: dict[str, Any], pb_json: Path,
                   pytest_args: list[str]) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-p", PLUGIN, "--pyargs", "rope_suite.benchmarks", "-q",
               "-p", "no:cacheprovider",
               "--bench-impl", target, "--bench-profile", profile, "--bench-jsonl", str(stream),
               "--bench-run-id", run["run_id"], "--bench-machine-id", run["machine_id"],
               "--benchmark-json", str(pb_json), "--benchmark-disable-gc", "-W", "ignore::DeprecationWarning"]
    try:
        import pytest_timeout  # noqa: F401  (a long-context case of a slow library may take minutes)
        command += ["-o", "timeout=3600"]
    except ImportError:
        pass
    return command + pytest_args


def run_bench(targets: list[str] | None, *, profile: str, results: Path, pytest_args: list[str],
              steady_allocator: bool = True, bound_threads: bool = True) -> int:
    """Time every target; write ``results`` (and ``results`` with .jsonl beside it, and the
    pytest-benchmark files in ``<results stem>.pytest-benchmark/``); return the exit code:
    0 when every first-party and no-op case ran or was skipped with a reason and at least one
    case was measured, else 1 (a run that measured nothing never ends quietly in an empty report)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(highlight=False)
    chosen = bench_targets(targets)
    cases = profile_cases(profile)
    machine = fingerprint()
    env = bench_environment(os.environ, steady_allocator=steady_allocator, bound_threads=bound_threads)
    run = {"run_id": uuid.uuid4().hex[:12], "machine_id": machine["machine_id"], "profile": profile,
           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "command": "rope-suite bench " + " ".join(targets or []) + f" --profile {profile}"
                      + ("" if steady_allocator else " --allocator system") + ("" if bound_threads else " --threads os"),
           "allocator": allocator_label(env), "threads": threads_label(env)}
    stream = Stream(results.with_suffix(".jsonl"))
    stream.start({"schema": STREAM, "schema_version": SCHEMA_VERSION, "run": run, "machine": machine})
    pb_dir = results.parent / f"{results.stem}.pytest-benchmark"
    pb_dir.mkdir(parents=True, exist_ok=True)
    cuda = cuda_available()
    converted: dict[str, list[dict[str, Any]]] = {}
    failures: list[str] = []
    sources: list[str] = []
    interrupted = False
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        overall = progress.add_task("all targets", total=len(chosen) * len(cases))
        try:
            for target in chosen:
                if target.record is not None and "triton" in target.record.requires and not cuda:
                    # Every case would be skipped (see timing.skip_reason): say so without a process.
                    base = {"run_id": run["run_id"], "machine_id": run["machine_id"], "implementation": target.name,
                            "kind": kind(target), "framework": target.record.framework, "device": "cpu"}
                    rows = [empty_row({**base, **c.to_dict()}, "skipped", interpreted(target.name))
                            for c in cases]
                    stream.append(rows)
                    progress.update(overall, advance=len(cases))
                    continue
                task = progress.add_task(target.name, total=len(cases))
                pb_json = pb_dir / f"{slug(target.name)}.json"
                pb_json.unlink(missing_ok=True)
                command = pytest_command(target.name, profile, stream.path, run, pb_json, pytest_args)
                code = _follow(command, env, stream, progress, (task, overall), TIMEOUT_S[profile])
                if not console.is_terminal:
                    console.print(f"bench: {target.name}: done (pytest exit {code})")
                benchmarks = _read_pytest_benchmark(pb_json)
                if benchmarks is not None:
                    converted[target.name] = rows_from_pytest_benchmark(benchmarks)
                    sources.append(str(pb_json.relative_to(results.parent)))
                if code not in (0, 1, 5) or (code == 1 and kind(target) in ("first-party", "noop")):
                    failures.append(f"{target.name}: pytest exit {code}")
                progress.remove_task(task)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            stream.poll()
            rows = _merge(stream.rows, converted)
            doc = document([run], {machine["machine_id"]: machine}, derive(rows), sources)
            write_atomic(results, json.dumps(doc, indent=1))
    _summary(console, doc["rows"], results, stream.path)
    if interrupted:
        console.print("[red]bench: interrupted; the results hold the cases that finished[/red]")
        return 130
    measured = sum(r["status"] == "ok" and r["timing"] == "wall" for r in doc["rows"])
    if not measured:
        failures.append(f"no case was measured ({len(doc['rows'])} rows, all skipped or failed): "
                        f"the log of each target's pytest process is in {stream.log}")
    for line in failures:
        console.print(f"[red]bench: {line}[/red]")
    return 1 if failures else 0


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA device (the Triton kernels need one to be timed)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _follow(command: list[str], env: dict[str, str], stream: Stream, progress: Any, tasks: tuple[Any, Any],
            timeout: float | None) -> int:
    """Run one target's pytest process (its output appended to the log beside the stream), advancing
    the progress bars as its rows arrive, killed after ``timeout`` seconds; its exit status."""
    with open(stream.log, "a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        ended = follow(command, stream.poll, lambda rows: _advance(rows, progress, tasks), stdout=out,
                       stderr=subprocess.STDOUT, env=env, timeout=timeout)
        if ended.stopped:
            out.write(f"\nkilled: {ended.stopped}\n")
    return ended.returncode


def _read_pytest_benchmark(path: Path) -> dict[str, Any] | None:
    """pytest-benchmark's JSON, or None when it wrote none (every case skipped, or the process
    was cut short): the stream's rows stand in for it then."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("benchmarks") else None


def _advance(rows: list[dict[str, Any]], progress: Any, tasks: tuple[Any, Any]) -> None:
    done = sum(r.get("timing") == "wall" for r in rows)
    for task in tasks:
        progress.update(task, advance=done)


def _merge(streamed: list[dict[str, Any]], converted: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """pytest-benchmark's converted rows where its JSON exists; the stream's rows otherwise
    (a target cut short), and always the stream's skipped and failed cases."""
    rows = [r for rs in converted.values() for r in rs]
    done = {(r["implementation"], r["case"]) for r in rows}
    return rows + [r for r in streamed if (r["implementation"], r["case"]) not in done]


def _summary(console: Any, rows: list[dict[str, Any]], results: Path, stream: Path) -> None:
    from rich.table import Table

    table = Table(title="float32 prefill-2048, forward, q (wall clock)")
    for column in ("implementation", "median ms", "GB/s", "of copy", "vs torch-eager", "compile s"):
        table.add_column(column)
    for r in sorted((r for r in rows if r["case"] == "prefill-2048/float32/forward/q" and r["status"] == "ok"
                     and r["timing"] == "wall" and r["kind"] != "noop"), key=lambda r: r["median_s"]):
        table.add_row(r["implementation"], f"{r['median_s'] * 1e3:.3f}", f"{r['gbps']:.2f}",
                      _pct(r["fraction_of_copy"]), _x(r["speedup_vs_torch_eager"]), f"{r['compile_s'] or 0:.2f}")
    if table.rows:
        console.print(table)
    counts = {s: sum(r["status"] == s for r in rows if r["timing"] == "wall") for s in ("ok", "skipped", "error")}
    console.print(f"bench: {counts['ok']} cases measured, {counts['skipped']} skipped, {counts['error']} failed; "
                  f"results in {results} (stream {stream})")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"
