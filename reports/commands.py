"""Subcommands for benchmarks and reports (``bench``, ``report``, ``compare``), wired into
``rope-suite`` by :func:`add_commands`; ``RUN_STEPS`` extend the main job (``rope-suite run``).

    rope-suite bench [TARGET...] [--quick] [--results results/bench.json] [pytest options]
    rope-suite report RESULTS... [--output results/report]
    rope-suite compare OLD NEW [--threshold 0.10]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

RESULTS_DIR = Path("results")
BENCH_RESULTS = RESULTS_DIR / "bench.json"
CHECK_REPORT = RESULTS_DIR / "check-all.json"
REPORT = RESULTS_DIR / "report"


def cmd_bench(args: argparse.Namespace, pytest_args: list[str]) -> int:
    from rope_suite.benchmarks.runner import run_bench

    profile = "quick" if args.quick else args.profile
    return run_bench(args.targets or None, profile=profile, results=Path(args.results), pytest_args=pytest_args,
                     steady_allocator=args.allocator == "steady")


def cmd_report(args: argparse.Namespace) -> int:
    from .render import write
    from .report import build
    from .results import ResultsError, load_inputs

    try:
        inputs = load_inputs(args.results)
    except ResultsError as err:
        print(f"rope-suite report: error: {err}", file=sys.stderr)
        return 2
    html_path, md_path = write(build(inputs), args.output)
    print(f"rope-suite report: {len(inputs.rows)} rows, {len(inputs.checks)} conformance reports, "
          f"{len(inputs.machines)} machine(s) -> {html_path} and {md_path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, report_lines
    from .results import ResultsError, load_inputs

    try:
        old, new = load_inputs([args.old]), load_inputs([args.new])
    except ResultsError as err:
        print(f"rope-suite compare: error: {err}", file=sys.stderr)
        return 2
    result = compare(old, new, args.threshold)
    print("\n".join(report_lines(result, args.threshold)))
    return 1 if result[0] else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the ``rope-suite`` parser."""
    p = sub.add_parser("bench", help="time implementations against the copy roofline (unknown options go to pytest)",
                       description="TARGET: registered names, groups (first-party, third-party, all, noop), "
                                   "module:object or file.py; default: all registered implementations and the no-ops. "
                                   "Each runs in its own pytest process; rows stream to RESULTS with .jsonl as cases "
                                   "finish.")
    p.add_argument("targets", nargs="*", metavar="TARGET")
    p.add_argument("--quick", action="store_true", help="the quick profile (CI: a few cases per implementation)")
    p.add_argument("--profile", choices=("quick", "full"), default="full")
    p.add_argument("--results", default=str(BENCH_RESULTS), metavar="FILE",
                   help=f"results document to write (default {BENCH_RESULTS})")
    p.add_argument("--allocator", choices=("steady", "system"), default="steady",
                   help="steady (default): each process keeps the memory it frees (glibc MALLOC_MMAP_MAX_=0 ...), "
                        "so the operation and the copy are timed without first-touch page faults on their outputs; "
                        "system: the C library's defaults")
    p.set_defaults(func=cmd_bench, passthrough=True)
    p = sub.add_parser("report", help="HTML + Markdown report from results files and check --json reports")
    p.add_argument("results", nargs="+", metavar="RESULTS",
                   help="bench results (.json or the .jsonl stream) and rope-suite check --json reports")
    p.add_argument("--output", "-o", default=str(REPORT), metavar="PATH",
                   help=f"writes PATH.html, PATH.md and PATH-plots/ (default {REPORT})")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("compare", help="flag regressions between two results files (exit 1 if any)")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--threshold", type=float, default=0.10,
                   help="relative slow-down of the median that counts as a regression (default 0.10)")
    p.set_defaults(func=cmd_compare)


def bench_quick() -> int:
    from rope_suite.benchmarks.runner import run_bench

    return run_bench(None, profile="quick", results=BENCH_RESULTS, pytest_args=[])


def report_of_results() -> int:
    inputs = [str(p) for p in (CHECK_REPORT, BENCH_RESULTS) if p.is_file()]
    if not inputs:
        print("rope-suite: no results to report on")
        return 1
    return cmd_report(argparse.Namespace(results=inputs, output=str(REPORT)))


RUN_STEPS: list[tuple[str, Callable[[], int]]] = [
    ("benchmarks, quick profile (results/bench.json)", bench_quick),
    ("comparison report (results/report.html, results/report.md)", report_of_results),
]
