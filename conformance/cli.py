"""The ``rope-suite`` command line.

Subcommands:
  presets           list the named model specs
  spec SPEC         validate a spec (a preset name or a JSON object) and print it
  list              registered implementations (and, with --supports, what each supports)
  check TARGET...   the conformance checks on targets, each in its own subprocess
  mutants           the mutation catalogue through the checks: the mutation score
  table REPORT...   the implementation x feature matrix from check --json reports
  bench TARGET...   time implementations against the copy roofline
  report RESULTS... the HTML + Markdown report from results files and check reports
  compare OLD NEW   regressions between two results files
  vectors           export the cases as files (export DIR), judge another program's outputs (verify DIR OUTPUTS)
  run               the main job: every step that exists, in order (see ``steps()``)

This is the commands layer: it may import every other layer, and nothing imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rope_suite.implementations.thirdparty.signatures import SIGNATURES

from . import reference
from .cases import PROFILES
from .hangs import DEFAULT_MAX_TIMEOUTS
from .presets import PRESETS, preset
from .process import sigterm_exits
from .spec import RopeSpec

RESULTS_DIR = Path("results")
BENCH_RESULTS = RESULTS_DIR / "bench.json"
CHECK_REPORT = RESULTS_DIR / "check-all.json"
REPORT = RESULTS_DIR / "report"


def parse_spec(text: str) -> RopeSpec:
    """A preset name, or a JSON object with RopeSpec fields (``scaling`` as HF's rope_scaling)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"spec is not valid JSON: {err}") from None
        return RopeSpec.from_dict(data)
    return preset(text)


def cmd_presets(_: argparse.Namespace) -> int:
    width = max(map(len, PRESETS))
    for name, spec in PRESETS.items():
        print(f"{name:<{width}}  {json.dumps(spec.to_dict())}")
    return 0


def cmd_spec(args: argparse.Namespace) -> int:
    spec = parse_spec(args.spec)
    print(json.dumps(spec.to_dict(), indent=2))
    print(f"attention_factor: {reference.attention_factor(spec)!r}")
    if not spec.sequence_dependent:
        print("inverse_frequencies:", np.array2string(reference.inverse_frequencies(spec), precision=6))
    return 0


def reference_self_check() -> int:
    """Rotate random data with every preset and confirm the two identities that need no oracle:
    position 0 is the identity and every rotated pair keeps its norm (times the attention factor)."""
    rng = np.random.default_rng(0)
    failures = 0
    for name, spec in PRESETS.items():
        axes = () if spec.n_axes == 1 else (spec.n_axes,)
        x = rng.standard_normal((2, 8, 2, spec.head_dim))
        pos = rng.integers(0, 1 << 16, size=(2, 8, *axes))
        y = reference.apply(x, pos, spec)
        first, second = reference.pair_channels(spec)
        gain = reference.attention_factor(spec)
        norm_err = np.max(np.abs(np.hypot(y[..., first], y[..., second])
                                 - gain * np.hypot(x[..., first], x[..., second])))
        zero = reference.apply(x, np.zeros_like(pos), spec)
        ok = norm_err < 1e-12 and (gain != 1 or np.array_equal(zero, x))
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} reference {name}: pair-norm error {norm_err:.1e}")
    return 1 if failures else 0


def conformance_of_installed() -> int:
    """Every registered implementation (absent frameworks are skipped) through the quick profile,
    each in its own process; the report goes to results/check-all.json, the matrix to the screen.
    Third-party deviations are findings, not a failure of this step."""
    from rope_suite.reports.conformance_table import load_reports, markdown_table
    from rope_suite.reports.findings import publish

    from .check_command import EXIT_USAGE, check, expand
    RESULTS_DIR.mkdir(exist_ok=True)
    report = CHECK_REPORT
    code = check(expand([], True), profile="quick", json_path=str(report), pytest_args=[], shown_cases=0)
    reports = load_reports([report])
    print(markdown_table(reports))
    found, text = publish(reports, RESULTS_DIR / "findings", relative_to=Path.cwd())
    print(f"\nFindings ({len(found)}, reproductions in {RESULTS_DIR / 'findings'}):")
    print(text)
    print(f"\nEvery case, with its reason: {report} (rope-suite check --verbose prints them on the terminal)")
    return EXIT_USAGE if code == EXIT_USAGE else 0


def steps() -> list[tuple[str, Callable[[], int]]]:
    """The main job, in order."""
    return [("reference self-check", reference_self_check),
            ("conformance of every registered implementation", conformance_of_installed),
            ("benchmarks, quick profile (results/bench.json)", bench_quick),
            ("comparison report (results/report.html, results/report.md)", report_of_results)]


def cmd_run(_: argparse.Namespace) -> int:
    status = 0
    for title, step in steps():
        print(f"== {title}")
        status = max(status, step())
    return status


def cmd_list(args: argparse.Namespace) -> int:
    """Registered implementations: framework, kind, whether installed, and (--supports) what each supports."""
    from .cases import SPECS
    from .frameworks import FLOAT_DTYPES
    from .targets import known
    records = known()
    width = max(map(len, records))
    for name, rec in records.items():
        kind = "first-party" if rec.first_party else "third-party"
        missing, unavailable = rec.missing(), rec.unavailable()
        state = f"missing {missing}" if missing else ("unavailable" if unavailable else "installed")
        print(f"{name:<{width}}  {rec.framework or '?':<10} {kind:<11} {state:<22} {rec.summary}")
        if args.supports and not unavailable:
            print(f"{'':<{width}}  supports: {supported_summary(rec, SPECS, FLOAT_DTYPES)}")
    return 0


def supported_summary(record, specs, dtypes) -> str:
    """How many of the suite's specs the implementation supports, per dtype (loads it)."""
    try:
        obj = record.load()
    except Exception as err:  # a listing reports a broken plug-in rather than stopping
        return f"cannot load: {type(err).__name__}: {err}"
    supports = getattr(obj, "supports", None)
    if supports is None:
        return "everything (no supports())"
    counts = []
    for dtype in dtypes:
        try:
            n = sum(bool(supports(spec, dtype)) for spec in specs.values())
        except Exception as err:
            return f"supports() raised {type(err).__name__}: {err}"
        counts.append(f"{dtype} {n}/{len(specs)}")
    return ", ".join(counts) + " specs"


def cmd_check(args: argparse.Namespace, pytest_args: list[str]) -> int:
    from .check_command import check, expand
    targets = expand(args.targets, args.all)
    if not targets:
        print("rope-suite: error: name at least one TARGET, or --all", file=sys.stderr)
        return 2
    for option in ("xfails_file", "skips_file"):
        path = getattr(args, option)
        if path:
            if not Path(path).is_file():
                print(f"rope-suite: error: --{option.replace('_', '-')} {path}: no such file", file=sys.stderr)
                return 2
            pytest_args += [f"--{option.replace('_', '-')}", str(Path(path).resolve())]
    if args.resume and not args.json:
        print("rope-suite: error: --resume continues the run of --json FILE: name that FILE", file=sys.stderr)
        return 2
    if args.memory_budget:
        from .budget import parse_bytes
        parse_bytes(args.memory_budget)  # a ValueError is a usage error (exit 2)
        pytest_args += ["--memory-budget", args.memory_budget]
    if args.case_timeout is not None and args.case_timeout < 0:
        raise ValueError(f"--case-timeout {args.case_timeout:g} is invalid: give seconds > 0, or 0 for none")
    if args.max_timeouts < 0:
        raise ValueError(f"--max-timeouts {args.max_timeouts} is invalid: give a count > 0, or 0 for no limit")
    if args.signature:
        from .targets import resolve
        resolve(targets, args.signature)  # an unknown name is a usage error (exit 2) listing the allowed ones
    return check(targets, profile=args.profile, json_path=args.json, pytest_args=pytest_args,
                 case_timeout=args.case_timeout or None, max_timeouts=args.max_timeouts, resume=args.resume,
                 verbose=args.verbose, strict=args.strict or args.profile == "strict", signature=args.signature)


def cmd_findings(args: argparse.Namespace) -> int:
    """Every distinct third-party deviation in check reports, each with a standalone reproduction."""
    from rope_suite.reports.conformance_table import load_reports, update_readme
    from rope_suite.reports.findings import END, START, publish
    paths = args.reports or [str(CHECK_REPORT)]
    readme = Path(args.readme) if args.readme else None
    found, text = publish(load_reports(paths), Path(args.scripts),
                          relative_to=readme.resolve().parent if readme else Path.cwd())
    if readme:
        update_readme(readme, text, (START, END))
        print(f"rope-suite: {len(found)} findings written into {readme}; reproductions in {args.scripts}")
    else:
        print(text)
        print(f"rope-suite: {len(found)} findings from {', '.join(paths)}; reproductions in {args.scripts} "
              f"(run one: python {args.scripts}/NAME.py)")
    return 0


def cmd_mutants(args: argparse.Namespace, pytest_args: list[str]) -> int:
    from .mutation import run_mutants
    return run_mutants(profile=args.profile, json_path=args.json, pytest_args=pytest_args)


def cmd_table(args: argparse.Namespace) -> int:
    """The implementation x feature matrix from check reports; into README between its markers."""
    from rope_suite.reports.conformance_table import load_reports, markdown_table, update_readme
    table = markdown_table(load_reports(args.reports))
    if args.readme:
        update_readme(Path(args.readme), table)
        print(f"rope-suite: conformance table written into {args.readme}")
    else:
        print(table)
    return 0


def cmd_bench(args: argparse.Namespace, pytest_args: list[str]) -> int:
    from rope_suite.benchmarks.runner import run_bench

    profile = "quick" if args.quick else args.profile
    return run_bench(args.targets or None, profile=profile, results=Path(args.results), pytest_args=pytest_args,
                     steady_allocator=args.allocator == "steady", bound_threads=args.threads == "bound")


def cmd_report(args: argparse.Namespace) -> int:
    from rope_suite.reports.render import write
    from rope_suite.reports.report import build
    from rope_suite.reports.results import ResultsError, load_inputs

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
    from rope_suite.reports.compare import compare, report_lines
    from rope_suite.reports.results import ResultsError, load_inputs

    try:
        old, new = load_inputs([args.old]), load_inputs([args.new])
    except ResultsError as err:
        print(f"rope-suite compare: error: {err}", file=sys.stderr)
        return 2
    result = compare(old, new, args.threshold)
    print("\n".join(report_lines(result, args.threshold)))
    return 1 if result[0] else 0


def add_bench_and_report_commands(sub: argparse._SubParsersAction) -> None:
    """``bench``, ``report`` and ``compare``."""
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
    p.add_argument("--threads", choices=("bound", "os"), default="bound",
                   help="bound (default): OpenMP threads bound to cores (OMP_PROC_BIND=true), so no process times "
                        "its calls with a worker sharing the main thread's core; os: the scheduler places them")
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


def cmd_vectors_export(args: argparse.Namespace) -> int:
    from .vectors import export
    supports = None if args.supports is None else [f for f in args.supports.split(",") if f and f != "plain"]
    items = export(Path(args.directory), args.profile, args.check, args.dtype, supports)
    counts = ", ".join(f"{check} {n}" for check, n in Counter(item.check for item in items).items())
    print(f"rope-suite vectors: {len(items)} cases ({counts}) written to {args.directory}")
    return 0


def cmd_vectors_verify(args: argparse.Namespace) -> int:
    from .vectors import verify
    return verify(Path(args.directory), Path(args.outputs), args.json, args.verbose)


def add_vectors_commands(sub: argparse._SubParsersAction) -> None:
    """``vectors export`` and ``vectors verify``: the cases as files for implementations that are not Python."""
    p = sub.add_parser("vectors", help="test vectors for implementations that are not Python: export the cases as "
                                       ".npy + JSON, verify the outputs another program wrote")
    actions = p.add_subparsers(dest="action", required=True)
    p = actions.add_parser("export", help="write the one-call checks' cases (agreement, identity_at_zero) into DIR",
                           description="Each case: DIR/<case id>/ with x.npy, positions.npy, reference.npy, "
                                       "allowed_error.npy, case.json and case.txt; DIR/index.json and index.txt list "
                                       "them. DIR must be absent, empty or an earlier export (replaced).")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--profile", choices=("quick", "full"), default="quick")
    p.add_argument("--check", action="append", metavar="NAME", help="only this check's cases (repeatable)")
    p.add_argument("--dtype", action="append", metavar="DTYPE", help="only this dtype's cases (repeatable)")
    p.add_argument("--supports", metavar="FEATURES",
                   help="the features the implementation has, comma-separated (interleaved, partial, a rope_type, "
                        "mrope, axial2d; plain: none): cases with any other are left out")
    p.set_defaults(func=cmd_vectors_export)
    p = actions.add_parser("verify", help="judge OUTPUTS/<case id>/output.npy against the export in DIR",
                           description="Exit 0 every case passed, 1 a case failed or has no output, 2 usage error "
                                       "(DIR not an export, or of another format version).")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("outputs", metavar="OUTPUTS")
    p.add_argument("--json", metavar="FILE", help="write the machine-readable report (check's) to FILE")
    p.add_argument("--verbose", action="store_true", help="the full message of every failing case")
    p.set_defaults(func=cmd_vectors_verify)


def bench_quick() -> int:
    from rope_suite.benchmarks.runner import run_bench

    return run_bench(None, profile="quick", results=BENCH_RESULTS, pytest_args=[])


def report_of_results() -> int:
    inputs = [str(p) for p in (CHECK_REPORT, BENCH_RESULTS) if p.is_file()]
    if not inputs:
        print("rope-suite: no results to report on")
        return 1
    return cmd_report(argparse.Namespace(results=inputs, output=str(REPORT)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rope-suite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("presets", help="list the named model specs").set_defaults(func=cmd_presets)
    p = sub.add_parser("spec", help="validate and print a spec (preset name or JSON)")
    p.add_argument("spec")
    p.set_defaults(func=cmd_spec)
    sub.add_parser("run", help="the main job: every step that exists").set_defaults(func=cmd_run)
    p = sub.add_parser("list", help="registered implementations")
    p.add_argument("--supports", action="store_true", help="load each and count the specs it supports per dtype")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("check", help="run the conformance checks on targets (unknown options go to pytest)",
                       description="TARGET: a registered name (rope-suite list), pkg.module, pkg.module:object, "
                                   "path/to/file.py or path/to/file.py:object. Exit 0 conformant, 1 non-conformant, "
                                   "2 usage error or unloadable target.")
    p.add_argument("targets", nargs="*", metavar="TARGET")
    p.add_argument("--all", action="store_true", help="every registered and installed plug-in implementation")
    p.add_argument("--signature", metavar="NAME",
                   help="the free-form targets are bare functions with this calling convention, wrapped into "
                        "plug-ins: " + "; ".join(f"{s.name}: {s.call}" for s in SIGNATURES.values()))
    p.add_argument("--profile", choices=PROFILES, default="quick",
                   help="quick (default): every check and dtype, fewer specs; full; strict: quick's cases with "
                        "float64 judged against float64 angles (as --strict)")
    p.add_argument("--json", metavar="FILE", help="write the machine-readable report to FILE")
    p.add_argument("--xfails-file", metavar="FILE", help="known deviations: case-id prefixes, one per line")
    p.add_argument("--skips-file", metavar="FILE", help="cases not to run: case-id prefixes, one per line")
    p.add_argument("--case-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="a case still running after SECONDS is stopped and reported as timed out (default 120; 0: none)")
    p.add_argument("--max-timeouts", type=int, default=DEFAULT_MAX_TIMEOUTS, metavar="N",
                   help="after N cases in a row time out, the target hung: stop it, report its remaining cases as "
                        f"not run, go on with the next target (default {DEFAULT_MAX_TIMEOUTS}; 0: no limit)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: keep the cases already in FILE.jsonl of --json FILE, run the rest")
    p.add_argument("--memory-budget", metavar="SIZE",
                   help="skip cases whose inputs and outputs would need more than SIZE (e.g. 2GiB, 25%%; default: "
                        "env ROPE_SUITE_MEMORY_BUDGET, else 50%% of this machine's memory)")
    p.add_argument("--strict", action="store_true",
                   help="judge float64 inputs against float64 angles (default: float32 angles, standard practice; "
                        "the angle accuracy reached is reported either way)")
    p.add_argument("--verbose", action="store_true",
                   help="every failing case with its reproduction, full messages and tracebacks")
    p.set_defaults(func=cmd_check, passthrough=True)
    p = sub.add_parser("table", help="the conformance matrix (Markdown) from rope-suite check --json reports")
    p.add_argument("reports", nargs="+", metavar="REPORT")
    p.add_argument("--readme", metavar="FILE", help="write the table into FILE between its table markers")
    p.set_defaults(func=cmd_table)
    p = sub.add_parser("findings", help="every distinct third-party deviation in check reports, with a standalone "
                                        "reproduction script each")
    p.add_argument("reports", nargs="*", metavar="REPORT", help=f"rope-suite check --json reports (default: "
                                                                f"{CHECK_REPORT})")
    p.add_argument("--scripts", default=str(RESULTS_DIR / "findings"), metavar="DIR",
                   help="where the reproduction scripts go (one per finding)")
    p.add_argument("--readme", metavar="FILE", help="write the list into FILE between its findings markers")
    p.set_defaults(func=cmd_findings)
    p = sub.add_parser("mutants", help="run the mutation catalogue and print the mutation score")
    p.add_argument("--profile", choices=("quick", "full"), default="quick")
    p.add_argument("--json", metavar="FILE", help="write the score and each mutant's catching checks to FILE")
    p.set_defaults(func=cmd_mutants, passthrough=True)
    add_bench_and_report_commands(sub)
    add_vectors_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        with sigterm_exits():  # a stopped run stops the processes it started, and bench keeps its results
            return args.func(args, unknown) if getattr(args, "passthrough", False) else args.func(args)
    except ValueError as err:
        print(f"rope-suite: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the subprocesses are gone already (process.follow)
        print("rope-suite: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
