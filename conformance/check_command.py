"""``rope-suite check``: the conformance suite over named targets, for other projects' CI.

Each target runs in its own pytest subprocess (a process-global setting such as the Keras
backend stays inside it), and inside that, under pytest-xdist, in one worker that xdist
replaces when a case kills it: a segfault, an abort or ``os._exit`` loses only that case,
reported as ``crashed`` with the exit signal and the tail of stderr. pytest-timeout stops a
case that hangs (``timed out``); a faulthandler watchdog kills one stuck in C code. After
``max_timeouts`` cases in a row time out, the target hung: its processes are killed, the
cases it had left are reported ``not run``, one line says so, and the next target runs
(:mod:`rope_suite.conformance.hangs`). The subprocess is followed by
:func:`rope_suite.conformance.process.follow`: when this process stops, by any signal, its
subprocesses stop with it. Every finished case is appended to a JSON-lines file as it ends
(beside ``--json FILE``, as ``FILE.jsonl``), so a run killed outright keeps its results and
``--resume`` runs only the rest. This process shows progress, then prints one line per check
with the counts, each failure with its message and a Python snippet that reproduces it, and
the verdict.

Exit codes: 0 every target conformant (at least one case ran, none failed); 1 some target
non-conformant (a case failed, crashed, timed out or did not run because the target hung);
2 usage error or a target that cannot be loaded.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import re
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rope_suite.reports.results import write_atomic

from .crashes import condense_stderr, describe_exit
from .hangs import DEFAULT_MAX_TIMEOUTS, HangWatch, not_run
from .plan import plan
from .process import Tail, follow
from .records import FAILING, NOT_RUN, OBSERVED, describe_precision, precision_classes, read_records
from .targets import library_versions, resolve

EXIT_CONFORMANT, EXIT_NONCONFORMANT, EXIT_USAGE = 0, 1, 2
RANDOM_EXAMPLES = 1  # test_random_specs: one record per target
DEFAULT_CASE_TIMEOUT = 120.0
MAX_CRASHES = 20  # crashed workers xdist replaces in one target's run before it gives up on the rest
PYTEST_EXITS = (0, 1, 2, 4, 5)  # ok, failures, interrupted, usage error, nothing collected
HARD_TIMEOUT = re.compile(r"^Timeout \([0-9:.]+\)!", re.MULTILINE)  # faulthandler's header


@dataclass
class TargetRun:
    """What one target's subprocess produced."""

    target: str
    returncode: int
    records: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""
    stderr: str = ""
    hung: str | None = None  # the one-line diagnosis when the run was stopped because the target hung

    @property
    def load_error(self) -> str | None:
        return next((r["load_error"] for r in self.records if r.get("load_error")), None)

    @property
    def framework(self) -> str | None:
        return next((r["framework"] for r in self.records if r.get("framework")), None)

    @property
    def stopped(self) -> str | None:
        """Why the run ended before every case had run, or None: the target hung, pytest itself died
        (a crash with no pytest-xdist worker to take it), or xdist gave up after too many crashed workers."""
        if self.hung:
            return self.hung
        killed_workers = sum("its worker was killed" in (r.get("reason") or "") for r in self.records)
        if len(HARD_TIMEOUT.findall(self.stderr)) > killed_workers:  # no xdist worker took the kill
            return (f"{self.target}: a case was still running at the hard timeout, so the pytest process was "
                    "killed; the cases after the last one recorded did not run\n  stderr:\n"
                    + _indent(condense_stderr(self.stderr)))
        if self.returncode not in PYTEST_EXITS:
            tail = condense_stderr(self.stderr)
            return (f"{self.target}: the pytest process {describe_exit(self.returncode)}; the cases after the last "
                    f"one recorded did not run" + ("\n  stderr:\n" + _indent(tail) if tail else ""))
        if "maximum crashed workers reached" in self.output:
            return (f"{self.target}: stopped after {MAX_CRASHES} crashed workers; the remaining cases did not run "
                    "(pass --max-worker-restart N to allow more)")
        return None

    @property
    def not_installed(self) -> dict[str, str] | None:
        """{"module", "install"} when the target's library is absent (every case skipped for it)."""
        return next((r["not_installed"] for r in self.records if r.get("not_installed")), None)

    @property
    def unavailable(self) -> str | None:
        """Why the target cannot run here when its code is absent (e.g. the seed snippets' folder)."""
        return next((r["unavailable"] for r in self.records if r.get("unavailable")), None)

    @property
    def summary(self) -> dict[str, int]:
        """Counts per outcome; ``passed`` includes the observed cases (a property, not a failure)."""
        c = Counter(r["status"] for r in self.records)
        return {"passed": c["passed"] + c[OBSERVED] + c["xfailed"] + c["xpassed"],
                "failed": sum(c[s] for s in FAILING), "skipped": c["skipped"], "crashed": c["crashed"],
                "timed_out": c["timed out"], "not_run": c[NOT_RUN], "observed": c[OBSERVED]}

    @property
    def properties(self) -> list[str]:
        """The labelled properties its cases observed (in place, call-order dependent), once each."""
        return list(dict.fromkeys(r["property"] for r in self.records if r.get("property")))

    @property
    def verdict(self) -> str:
        s = self.summary
        if s["passed"] == 0 and s["failed"] == 0:
            if self.not_installed:
                return "not installed"
            if self.unavailable:
                return "unavailable"
        return "conformant" if s["passed"] > 0 and s["failed"] == 0 and not self.stopped else "non-conformant"

    def report(self) -> dict[str, Any]:
        keys = ("check", "id", "spec", "dtype", "shape", "pattern", "status", "max_abs_err", "max_rel_err", "bound",
                "angles", "reason", "value", "mismatch", "property", "problem", "deviation", "case", "reproduction")
        out = {"target": self.target, "framework": self.framework, "verdict": self.verdict, "summary": self.summary,
               "properties": self.properties, "precision": precision_classes(self.records),
               "supplied": next((r["supplied"] for r in self.records if r.get("supplied")), {}),
               "checks": [{k: r.get(k) for k in keys if k not in AFTER_A_DEVIATION or r["status"] in DEVIATING}
                          for r in self.records]}
        for key, value in (("stopped", self.stopped), ("not_installed", self.not_installed)):
            if value:
                out[key] = value
        return out


DEVIATING = (*FAILING, OBSERVED)
AFTER_A_DEVIATION = ("case", "reproduction")  # only what `rope-suite findings` needs of a deviating case


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _given(pytest_args: list[str], *options: str) -> bool:
    return any(a == o or a.startswith(o + "=") or (len(o) == 2 and a.startswith(o)) for a in pytest_args
               for o in options)


def hard_timeout(case_timeout: float) -> float:
    """When the faulthandler watchdog kills a case that pytest-timeout's signal could not stop: a
    little after the case timeout (so the signal gets its chance first), and soon enough that
    --max-timeouts such cases in a row stop a target within minutes (3 x 132 s at the default)."""
    return case_timeout + max(5.0, 0.1 * case_timeout)


def isolation_args(pytest_args: list[str], case_timeout: float | None) -> list[str]:
    """pytest options that keep a broken case from taking the run down (what the user passed wins):
    one pytest-xdist worker, replaced when a case kills it; stderr passed through (tee-sys) so a
    crash leaves its last words; pytest-timeout per case, with a faulthandler backstop for C code."""
    args: list[str] = []
    if installed("xdist") and not _given(pytest_args, "-n", "--numprocesses", "--dist") and "no:xdist" not in pytest_args:
        args += ["-n", "1", "--max-worker-restart", str(MAX_CRASHES)]
    if not _given(pytest_args, "-s", "--capture"):
        args.append("--capture=tee-sys")
    if case_timeout:
        if installed("pytest_timeout") and not _given(pytest_args, "--timeout"):
            args += ["--timeout", f"{case_timeout:g}"]
        # signal-method timeouts need the case to come back to Python; this one does not
        args += ["--rope-hard-timeout", f"{hard_timeout(case_timeout):g}"]
    return args


def run_pytest(targets: list[str], profile: str, pytest_args: list[str], progress: Any = None,
               task: Any = None, *, stream: Path | None = None, done: Path | None = None,
               case_timeout: float | None = None, max_timeouts: int | None = None) -> list[TargetRun]:
    """Run the conformance tests for ``targets`` in one pytest subprocess, following its JSONL
    stream (``stream``, appended to; a temporary file if None); one TargetRun per target, in
    order, with every record ``stream`` holds for it. ``done``: a JSONL of cases not to rerun.
    ``max_timeouts``: after that many cases in a row time out, stop the subprocess and report the
    cases it had left ``not run`` (None or 0: never)."""
    with tempfile.TemporaryDirectory(prefix="rope-suite-") as tmp:
        stream = stream or Path(tmp) / "records.jsonl"
        stream.touch()
        impls = [arg for t in targets for arg in ("--impl", t)]
        log, err, planned = Path(tmp) / "pytest.log", Path(tmp) / "stderr.log", Path(tmp) / "planned.json"
        command = [sys.executable, "-m", "pytest", "--pyargs", "rope_suite.conformance", *impls, "--profile", profile,
                   *([] if _given(pytest_args, "-v", "--verbose") else ["-q"]), "-p", "no:cacheprovider",
                   "--rope-jsonl", str(stream), "--rope-stderr", str(err), "--rope-planned", str(planned),
                   "-W", "ignore::DeprecationWarning", *isolation_args(pytest_args, case_timeout),
                   *(["--rope-done", str(done)] if done else []), *pytest_args]
        watch = HangWatch(max_timeouts)

        def on_records(records: list[dict[str, Any]]) -> str | None:
            if progress is not None:
                progress.update(task, advance=len(records))
            return watch.see(records)

        with open(log, "w") as out, open(err, "w") as errors:
            ended = follow(command, Tail(stream).read, on_records, stdout=out, stderr=errors)
        records = latest(read_records(stream))
        hung = None
        if ended.stopped:
            plan_of_run = _read_planned(planned)
            left = not_run(plan_of_run or [], records)
            records += left
            hung = watch.diagnosis(None if plan_of_run is None else len(left))
        output, stderr = log.read_text(errors="replace"), err.read_text(errors="replace")
    return [TargetRun(t, ended.returncode, [r for r in records if r.get("implementation") == t], output, stderr, hung)
            for t in targets]


def _read_planned(path: Path) -> list[dict[str, Any]] | None:
    """The planned cases pytest wrote (--rope-planned), or None if it was stopped before it had."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def latest(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (implementation, case id), the last one written, in first-seen order."""
    by_key: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in records:
        by_key[(r.get("implementation"), r.get("id"))] = r
    return list(by_key.values())


def run_target(target: str, profile: str, pytest_args: list[str], progress: Any = None, task: Any = None,
               **options: Any) -> TargetRun:
    """One target in its own subprocess: a process-global setting stays there."""
    return run_pytest([target], profile, pytest_args, progress, task, **options)[0]


def results_stream(json_path: str, resume: bool) -> Path:
    """``FILE.jsonl`` beside the report: emptied for a fresh run; for --resume, kept, less any
    line a kill cut short (so new records start on a line of their own)."""
    stream = Path(json_path + ".jsonl")
    if not resume or not stream.exists():
        stream.parent.mkdir(parents=True, exist_ok=True)
        stream.write_text("")
        return stream
    data = stream.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(stream, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
    return stream


# --- reporting ------------------------------------------------------------------------------------

def snippet(run: TargetRun, record: dict[str, Any], signature: str | None = None) -> str:
    """A short Python program that rebuilds the failing case's inputs from its seed and reruns it
    (``signature``: the target is a bare function with that calling convention)."""
    case = record.get("case")
    if not case:
        under = f" --rope-signature {signature}" if signature else ""
        return (f"# rerun: pytest --pyargs rope_suite.conformance --impl {run.target}{under} "
                f"-k '{run.target}/{record.get('id')}'")
    args = ", ".join(f"{k}={v!r}" for k, v in case.items())
    lines = [
        "from rope_suite.conformance import accuracy, reference",
        "from rope_suite.conformance.cases import Case",
        "from rope_suite.conformance.checks import CHECKS",
        "from rope_suite.conformance.targets import resolve",
        f"subject = resolve([{run.target!r}]{f', signature={signature!r}' if signature else ''})[0].load()",
        f"case = Case({args})",
        "x, positions = case.inputs()  # fixed seed from the case id",
    ]
    if record.get("check") == "agreement":
        lines += [
            "got = subject.rope(x, positions, case.spec, case.dtype, case.pos_dtype)",
            "want = reference.apply(x, positions, case.spec)",
            "print(accuracy.compare(got, want, accuracy.allowed_error(x, positions, case.spec, case.dtype, "
            f"{record.get('angles_required') or 'float32'!r})))",
        ]
    else:
        lines.append(f"CHECKS[{record.get('check')!r}].run(subject, case)  # raises CheckFailed with the message")
    return "\n".join("    " + line for line in lines)


SHOWN_PROBLEMS = 5  # distinct one-line diagnoses printed per target (the JSON report has them all)
SHOWN_STDERR = 2  # crashed cases whose stderr tail is printed (the rest: the headline)
SHOWN_CASES = 3  # failing cases printed with their reproduction per target (--verbose: all)


def print_run(run: TargetRun, console: Any, verbose: bool = False, shown_cases: int = SHOWN_CASES,
              signature: str | None = None) -> None:
    """One target's outcome: counts per check, precision class per dtype, observed properties,
    the distinct problems, and up to ``shown_cases`` failing cases with their reproduction (all of
    them with ``verbose``; every case is in the --json report)."""
    if run.load_error:  # every case failed the same way: one line says it all
        console.print(f"[bold]{run.target}[/bold]: [red]cannot load[/red]: {run.load_error}")
        return
    if run.verdict == "unavailable":
        console.print(f"{run.target}: unavailable: {run.unavailable}", markup=False)
        return
    if run.verdict == "not installed":
        missing = run.not_installed
        console.print(f"[bold]{run.target}[/bold]: [yellow]not installed[/yellow]: module {missing['module']} is "
                      f"missing (install: {missing['install']})")
        return
    by_check: dict[str, Counter] = defaultdict(Counter)
    for r in run.records:
        by_check[r.get("check") or "?"][r["status"]] += 1
    console.print(f"[bold]{run.target}[/bold] ({run.framework or 'framework unknown'})")
    for check, c in by_check.items():
        extra = "".join(f", {c[k]} {k}" for k in ("crashed", "timed out", NOT_RUN, "xfailed", "xpassed") if c[k])
        console.print(f"  {check:<18} {c['passed']:4d} passed {c['failed']:4d} failed {c['skipped']:4d} skipped{extra}")
    broken = [r for r in run.records if r["status"] in ("crashed", "timed out")]
    for i, r in enumerate(broken):
        text = r.get("reason") or "(no message)"
        console.print(text if verbose or i < SHOWN_STDERR else text.splitlines()[0], markup=False, highlight=False)
    failed = [r for r in run.records if r["status"] == "failed"]
    problems = Counter(r.get("reason") or "(no message)" for r in failed if r.get("problem"))
    first_case = {}
    for r in failed:
        first_case.setdefault(r.get("reason"), r.get("id"))
    for i, (reason, n) in enumerate(problems.most_common()):
        if i == SHOWN_PROBLEMS and not verbose:
            console.print(f"  ... and {len(problems) - i} more distinct problems (all in the --json report)",
                          markup=False)
            break
        where = f"{n} cases, e.g. {first_case[reason]}" if n > 1 else first_case[reason]
        console.print(f"{reason if verbose else reason.splitlines()[0]}  [{where}]", markup=False, highlight=False)
    classes = precision_classes(run.records)
    if classes:
        console.print(f"  precision: {describe_precision(classes)}", markup=False)
    observed = Counter(r["property"] for r in run.records if r.get("property"))
    for label, n in observed.items():
        first = next(r for r in run.records if r.get("property") == label)
        console.print(f"  observed: {label} ({n} case{'s' * (n != 1)}, e.g. {first.get('id')})", markup=False)
    wrong = [r for r in failed if not r.get("problem")]
    for i, r in enumerate(wrong):
        if i == shown_cases and not verbose:
            console.print(f"  ... and {len(wrong) - i} more failing cases (all in the --json report; --verbose "
                          "prints them here)", markup=False)
            break
        console.rule(f"{run.target}/{r.get('id')}", style="red")
        console.print(r.get("reason") or "(no message)", markup=False, highlight=False)
        console.print("  reproduce:", markup=False)
        console.print(snippet(run, r, signature), markup=False, highlight=False)
    for r in run.records:
        if r["status"] == "xpassed":
            console.print(f"  note: {r.get('id')} is listed as a known deviation but passed", markup=False)
    if run.stopped:
        console.print(run.stopped, markup=False, highlight=False)
    s = run.summary
    style = "green" if run.verdict == "conformant" else "red"
    more = "".join(f", {s[k]} {k.replace('_', ' ')}" for k in ("crashed", "timed_out", "not_run") if s[k])
    console.print(f"[{style}]{run.target}: {run.verdict}[/{style}] ({s['passed']} passed, {s['failed']} failed, "
                  f"{s['skipped']} skipped{more})")


def check(targets: list[str], *, profile: str, json_path: str | None, pytest_args: list[str],
          case_timeout: float | None = DEFAULT_CASE_TIMEOUT, max_timeouts: int | None = DEFAULT_MAX_TIMEOUTS,
          resume: bool = False, verbose: bool = False, strict: bool = False, shown_cases: int = SHOWN_CASES,
          signature: str | None = None) -> int:
    """Run every target; print; write ``json_path`` (and its ``.jsonl`` as cases finish);
    return the exit code. ``resume``: keep the ``.jsonl`` of an earlier run and skip its cases.
    ``max_timeouts``: stop a target after that many cases in a row time out (None or 0: never).
    ``strict``: float64 judged against float64 angles. ``shown_cases``: failing cases printed
    with their reproduction per target (``verbose``: all). ``signature``: the free-form targets
    are bare functions with that calling convention."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(highlight=False, soft_wrap=True)  # soft wrap: snippets stay copy-pasteable
    if not installed("xdist"):
        console.print("rope-suite: note: pytest-xdist is not installed, so a case that crashes ends its target's "
                      "run (install pytest-xdist to lose only that case)", markup=False)
    if case_timeout and not installed("pytest_timeout"):
        console.print("rope-suite: note: pytest-timeout is not installed; a hung case is killed after "
                      f"{hard_timeout(case_timeout):g} s instead", markup=False)
    total = len(plan(profile)) + RANDOM_EXAMPLES
    stream = results_stream(json_path, resume) if json_path else None
    args = [*pytest_args, *(["-v"] if verbose else []), *(["--rope-strict"] if strict else []),
            *(["--rope-signature", signature] if signature else [])]
    runs: list[TargetRun] = []
    with tempfile.TemporaryDirectory(prefix="rope-suite-done-") as tmp:
        done = None
        if resume and stream is not None:
            done = Path(tmp) / "done.jsonl"  # a snapshot: every xdist worker must deselect the same cases
            shutil.copyfile(stream, done)
        finished = Counter(r.get("implementation") for r in latest(read_records(done))) if done else Counter()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=not console.is_terminal) as progress:
            for target in targets:
                task = progress.add_task(target, total=total, completed=finished[target])
                runs.append(run_target(target, profile, args, progress, task, stream=stream, done=done,
                                       case_timeout=case_timeout, max_timeouts=max_timeouts))
    if resume and done is not None:
        console.print(f"rope-suite: resumed: {sum(finished.values())} cases from {stream} were not run again",
                      markup=False)
    for run in runs:
        print_run(run, console, verbose, shown_cases, signature)
    code = EXIT_CONFORMANT
    for run in runs:
        if run.load_error:
            code = EXIT_USAGE
        elif not run.records:
            tail = "\n".join((run.output + run.stderr).strip().splitlines()[-15:])
            console.print(f"[red]rope-suite: {run.target}: pytest ran no case (exit {run.returncode})[/red]")
            console.print(tail, markup=False)
            code = max(code, EXIT_USAGE if run.returncode in (2, 4) else EXIT_NONCONFORMANT)
        elif run.verdict != "conformant":
            code = max(code, EXIT_NONCONFORMANT)
    if json_path:
        about = run_record(profile, strict)
        reports = [{**run.report(), "run": about, "versions": library_versions(run.target, run.framework)}
                   for run in runs]
        write_atomic(Path(json_path), json.dumps(reports[0] if len(reports) == 1 else reports, indent=1))
        console.print(f"rope-suite: report written to {json_path} (each case as it finished: {stream})",
                      markup=False)
    return code


def run_record(profile: str, strict: bool = False) -> dict[str, Any]:
    """When and with what a check run was made: its date, profile, strict mode, and the suite's
    version and commit."""
    from importlib import metadata

    from rope_suite.reports.machine import git_commit

    try:
        version = metadata.version("rope-suite")
    except metadata.PackageNotFoundError:
        version = None
    commit, dirty = git_commit()
    return {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "profile": profile, "strict": strict, "rope_suite_version": version, "git_commit": commit,
            "git_dirty": dirty}


def expand(targets: list[str], all_registered: bool) -> list[str]:
    """The target names, groups (first-party, third-party, all) expanded so each runs alone."""
    names = (["all"] if all_registered else []) + targets
    return [t.name for t in resolve(names)] if names else []
