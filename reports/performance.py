"""The report's performance sections: throughput versus sequence length, fraction of the copy
roofline, compile times, every measured case, what was skipped or failed, and the machines."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from rope_suite.conformance.frameworks import FLOAT_DTYPES as DTYPES

from . import plots
from .model import Cell, Figure, Section, Table, ms, num, ok_rows, pct, runs
from .results import Inputs

SERIES_PHASES = ("prefill", "long")  # batch-1 prompts of growing length


def _slug(*parts: str) -> str:
    return "-".join("".join(c if c.isalnum() else "-" for c in p).strip("-") for p in parts)


def throughput(inputs: Inputs) -> Section:
    s = Section("throughput", "Throughput versus sequence length")
    s.intro.append("Prefill and long-context shapes (Llama 2 7B heads, batch 1); GB/s = bytes that must move / "
                   "median time; dashed: each framework's out-of-place copy of the same tensors.")
    for run_id, label in runs(inputs):
        rows = [r for r in ok_rows(inputs.rows, run_id=run_id) if r["phase"] in SERIES_PHASES and r["kind"] != "noop"]
        groups = sorted({(r["timing"], r["dtype"], r["direction"], r["mode"]) for r in rows},
                        key=lambda g: (g[0], DTYPES.index(g[1]), g[2], g[3]))
        for timing, dtype, direction, mode in groups:
            here = [r for r in rows if (r["timing"], r["dtype"], r["direction"], r["mode"]) ==
                    (timing, dtype, direction, mode)]
            if len({r["seq"] for r in here}) < 2:
                continue
            title = f"{dtype} {direction} ({mode}), {timing} timing\n{label}"
            s.blocks.append((f"{dtype}, {direction}, {mode}, {timing}: {label}",
                             Figure(_slug("throughput", run_id, timing, dtype, direction, mode),
                                    f"throughput versus sequence length, {dtype} {direction} {mode}",
                                    plots.throughput_vs_length(here, title))))
    if not s.blocks:
        s.intro.append("No sequence-length series among the inputs.")
    return s


def representative_cases(rows: list[dict[str, Any]]) -> list[str]:
    """Per phase, the largest float32 forward case (fused q+k for GQA, q otherwise)."""
    chosen = []
    for phase in ("decode", "prefill", "long", "vision", "gqa"):
        mode = "qk" if phase == "gqa" else "q"
        here = [r for r in rows if r["phase"] == phase and r["dtype"] == "float32" and r["direction"] == "forward"
                and r["mode"] == mode]
        if here:
            chosen.append(max(here, key=lambda r: (r["batch"] * r["seq"], r["case"]))["case"])
    return chosen


def roofline(inputs: Inputs) -> Section:
    s = Section("roofline", "Fraction of the copy roofline")
    s.intro.append("Each implementation's achieved GB/s over its own framework's out-of-place copy of the same "
                   "tensors, measured in the same process; one chart per phase (its largest float32 case).")
    for run_id, label in runs(inputs):
        rows = [r for r in ok_rows(inputs.rows, run_id=run_id) if r["kind"] != "noop"]
        for timing in sorted({r["timing"] for r in rows}):
            timed = [r for r in rows if r["timing"] == timing]
            for case in representative_cases(timed):
                here = [r for r in timed if r["case"] == case]
                title = f"{case} ({timing} timing)\n{label}"
                s.blocks.append((f"{case}, {timing}: {label}", Figure(_slug("roofline", run_id, timing, case),
                                                             f"fraction of copy bandwidth, {case}",
                                                             plots.roofline_bars(here, title))))
    if not s.blocks:
        s.intro.append("No measured cases among the inputs.")
    return s


def compile_times(inputs: Inputs) -> Section:
    s = Section("compile", "Compile time")
    s.intro.append("First call in the implementation's process minus its steady median: tracing, compilation and "
                   "autotuning, never part of the timed figures. The largest over the cases of each dtype, direction "
                   "and mode (later shapes reuse a dynamic-shape graph).")
    rows = ok_rows(inputs.rows, timing="wall")
    combos = sorted({(r["dtype"], r["direction"], r["mode"]) for r in rows},
                    key=lambda c: (DTYPES.index(c[0]), c[1], c[2]))
    worst: dict[tuple[str, str], dict[tuple, float]] = defaultdict(dict)
    for r in rows:
        key = (r["run_id"], r["implementation"])
        combo = (r["dtype"], r["direction"], r["mode"])
        worst[key][combo] = max(worst[key].get(combo, 0.0), r["compile_s"] or 0.0)
    table = Table(["run", "implementation", *(" ".join(c) for c in combos)], [])
    for (run_id, impl), values in sorted(worst.items()):
        table.rows.append([Cell(run_id), Cell(impl), *(Cell(num(values.get(c), "{:.3f} s"), "num") for c in combos)])
    s.blocks.append(("", table))
    return s


def cases(inputs: Inputs) -> Section:
    s = Section("cases", "Every measured case")
    s.intro.append("Median and interquartile range per call; GB/s of the bytes that must move; fraction of the same "
                   "framework's copy and of the machine's fastest copy; speedup over torch-eager on the same case; "
                   "peak bytes the framework allocated during one call (output included).")
    columns = ["run", "case", "implementation", "timing", "median", "IQR", "GB/s", "of copy", "of machine copy",
               "vs torch-eager", "peak MiB", "compile s"]
    table = Table(columns, [])
    order = {p: i for i, p in enumerate(("decode", "prefill", "long", "vision", "gqa"))}
    for r in sorted(ok_rows(inputs.rows), key=lambda r: (r["run_id"], order.get(r["phase"], 9), r["seq"],
                                                          r["case"], r["timing"], r["median_s"])):
        peak = r.get("peak_memory_bytes")
        table.rows.append([Cell(r["run_id"]), Cell(r["case"]), Cell(r["implementation"]), Cell(r["timing"]),
                           Cell(ms(r["median_s"]), "num"), Cell(ms(r.get("iqr_s")), "num"),
                           Cell(num(r["gbps"]), "num"), Cell(pct(r["fraction_of_copy"]), "num"),
                           Cell(pct(r.get("fraction_of_machine_copy")), "num"),
                           Cell(num(r.get("speedup_vs_torch_eager"), "{:.2f}x"), "num"),
                           Cell("–" if peak is None else f"{peak / 2**20:.1f}", "num",
                                r.get("peak_memory_method") or ""),
                           Cell(num(r.get("compile_s"), "{:.3f}"), "num")])
    s.blocks.append(("", table))
    return s


def problems(inputs: Inputs) -> Section:
    s = Section("skipped", "Skipped and failed cases")
    counts = Counter((r["implementation"], r["status"], r["reason"] or "") for r in inputs.rows if r["status"] != "ok")
    if not counts:
        s.intro.append("None.")
        return s
    table = Table(["implementation", "status", "cases", "reason"], [])
    for (impl, status, reason), n in sorted(counts.items()):
        table.rows.append([Cell(impl), Cell(status, "bad" if status == "error" else "na"), Cell(str(n), "num"),
                           Cell(reason)])
    s.blocks.append(("", table))
    return s


def machines(inputs: Inputs) -> Section:
    s = Section("machines", "Machines and runs")
    table = Table(["machine", "CPU", "cores (usable)", "memory", "last-level cache", "GPU", "driver", "OS",
                   "suite commit", "versions"], [])
    for mid, m in inputs.machines.items():
        memory = m.get("memory_bytes")
        commit = (m.get("git_commit") or "unknown")[:12] + (" (modified)" if m.get("git_dirty") else "")
        versions = ", ".join(f"{k} {v}" for k, v in sorted((m.get("versions") or {}).items()))
        cpu = "; ".join(filter(None, [m.get("cpu_id"), " ".join(m.get("cpu_simd") or [])]))
        table.rows.append([Cell(mid), Cell(str(m.get("cpu_model")) + (f" ({cpu})" if cpu else "")),
                           Cell(f"{m.get('cpu_cores')} ({m.get('cpu_cores_usable')})", "num"),
                           Cell("–" if memory is None else f"{memory / 2**30:.1f} GiB", "num"),
                           Cell("–" if not m.get("llc_bytes") else f"{m['llc_bytes'] / 2**20:.0f} MiB", "num"),
                           Cell(", ".join(m.get("gpus") or []) or "none"), Cell(str(m.get("gpu_driver") or "–")),
                           Cell(str(m.get("os", "–"))), Cell(commit), Cell(versions)])
    s.blocks.append(("", table))
    table = Table(["run", "machine", "created", "profile", "allocator", "threads", "command"],
                  [[Cell(r["run_id"]), Cell(r["machine_id"]), Cell(r["created"]), Cell(r["profile"]),
                    Cell(r.get("allocator") or "system"), Cell(r.get("threads") or "os (not recorded)"),
                    Cell(r.get("command") or "")] for r in inputs.runs])
    s.blocks.append(("Runs", table))
    return s
