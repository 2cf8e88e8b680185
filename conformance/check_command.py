"""``rope-suite check``: the conformance suite over named targets, for other projects' CI.

Each target runs in its own pytest subprocess (a crash, a hang or a process-global setting
such as the Keras backend stays inside it), streaming a JSON line per finished case; this
process shows progress, then prints one line per check with pass/fail/skip counts, each
failure with its message and a Python snippet that reproduces it, and the verdict.

Exit codes: 0 every target conformant (at least one case ran, none failed); 1 some target
non-conformant; 2 usage error or a target that cannot be loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plan import plan
from .targets import resolve

EXIT_CONFORMANT, EXIT_NONCONFORMANT, EXIT_USAGE = 0, 1, 2
RANDOM_EXAMPLES = 1  # test_random_specs: one record per target


@dataclass
class TargetRun:
    """What one target's subprocess produced."""

    target: str
    returncode: int
    records: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""

    @property
    def load_error(self) -> str | None:
        return next((r["load_error"] for r in self.records if r.get("load_error")), None)

    @property
    def framework(self) -> str | None:
        return next((r["framework"] for r in self.records if r.get("framework")), None)

    @property
    def summary(self) -> dict[str, int]:
        c = Counter(r["status"] for r in self.records)
        return {"passed": c["passed"] + c["xfailed"] + c["xpassed"], "failed": c["failed"], "skipped": c["skipped"]}

    @property
    def verdict(self) -> str:
        s = self.summary
        return "conformant" if s["passed"] > 0 and s["failed"] == 0 else "non-conformant"

    def report(self) -> dict[str, Any]:
        keys = ("check", "id", "spec", "dtype", "shape", "status", "max_abs_err", "max_rel_err", "bound", "reason",
                "value")
        return {"target": self.target, "framework": self.framework, "verdict": self.verdict, "summary": self.summary,
                "checks": [{k: r.get(k) for k in keys} for r in self.records]}


def run_pytest(targets: list[str], profile: str, pytest_args: list[str], progress: Any = None,
               task: Any = None) -> list[TargetRun]:
    """Run the conformance tests for ``targets`` in one pytest subprocess, following its JSONL
    stream; one TargetRun per target, in order."""
    with tempfile.TemporaryDirectory(prefix="rope-suite-") as tmp:
        stream = Path(tmp) / "records.jsonl"
        stream.touch()
        impls = [arg for t in targets for arg in ("--impl", t)]
        command = [sys.executable, "-m", "pytest", "--pyargs", "conformance", *impls, "--profile", profile,
                   "-q", "-p", "no:cacheprovider", "--rope-jsonl", str(stream), "-W", "ignore::DeprecationWarning",
                   *pytest_args]
        log = Path(tmp) / "pytest.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            seen = 0
            while proc.poll() is None:
                time.sleep(0.2)
                seen = _advance(stream, seen, progress, task)
            _advance(stream, seen, progress, task)
        records = [json.loads(line) for line in stream.read_text().splitlines() if line.strip()]
        output = log.read_text()
    return [TargetRun(t, proc.returncode, [r for r in records if r.get("implementation") == t], output)
            for t in targets]


def run_target(target: str, profile: str, pytest_args: list[str], progress: Any = None, task: Any = None) -> TargetRun:
    """One target in its own subprocess: a crash or a process-global setting stays there."""
    return run_pytest([target], profile, pytest_args, progress, task)[0]


def _advance(stream: Path, seen: int, progress: Any, task: Any) -> int:
    lines = stream.read_text().count("\n")
    if progress is not None and lines > seen:
        progress.update(task, advance=lines - seen)
    return lines


# --- reporting ------------------------------------------------------------------------------------

def snippet(run: TargetRun, record: dict[str, Any]) -> str:
    """A short Python program that rebuilds the failing case's inputs from its seed and reruns it."""
    case = record.get("case")
    if not case:
        return f"# rerun: pytest --pyargs conformance --impl {run.target} -k '{run.target}/{record.get('id')}'"
    args = ", ".join(f"{k}={v!r}" for k, v in case.items())
    lines = [
        "from conformance import accuracy, reference",
        "from conformance.cases import Case",
        "from conformance.checks import CHECKS",
        "from conformance.targets import resolve",
        f"subject = resolve([{run.target!r}])[0].load()",
        f"case = Case({args})",
        "x, positions = case.inputs()  # fixed seed from the case id",
    ]
    if record.get("check") == "agreement":
        lines += [
            "got = subject.rope(x, positions, case.spec, case.dtype, case.pos_dtype)",
            "want = reference.apply(x, positions, case.spec)",
            "print(accuracy.compare(got, want, accuracy.allowed_error(x, positions, case.spec, case.dtype)))",
        ]
    else:
        lines.append(f"CHECKS[{record.get('check')!r}].run(subject, case)  # raises CheckFailed with the message")
    return "\n".join("    " + line for line in lines)


def print_run(run: TargetRun, console: Any) -> None:
    if run.load_error:  # every case failed the same way: one line says it all
        console.print(f"[bold]{run.target}[/bold]: [red]cannot load[/red]: {run.load_error}")
        return
    by_check: dict[str, Counter] = defaultdict(Counter)
    for r in run.records:
        by_check[r.get("check") or "?"][r["status"]] += 1
    console.print(f"[bold]{run.target}[/bold] ({run.framework or 'framework unknown'})")
    for check, c in by_check.items():
        extra = "".join(f", {c[k]} {k}" for k in ("xfailed", "xpassed") if c[k])
        console.print(f"  {check:<18} {c['passed']:4d} passed {c['failed']:4d} failed {c['skipped']:4d} skipped{extra}")
    failed = [r for r in run.records if r["status"] == "failed"]
    for r in failed:
        console.rule(f"{run.target}/{r.get('id')}", style="red")
        console.print(r.get("reason") or "(no message)", markup=False, highlight=False)
        console.print("  reproduce:", markup=False)
        console.print(snippet(run, r), markup=False, highlight=False)
    for r in run.records:
        if r["status"] == "xpassed":
            console.print(f"  note: {r.get('id')} is listed as a known deviation but passed", markup=False)
    s = run.summary
    style = "green" if run.verdict == "conformant" else "red"
    console.print(f"[{style}]{run.target}: {run.verdict}[/{style}] ({s['passed']} passed, {s['failed']} failed, "
                  f"{s['skipped']} skipped)")


def check(targets: list[str], *, profile: str, json_path: str | None, pytest_args: list[str]) -> int:
    """Run every target; print; write ``json_path``; return the exit code."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(highlight=False, soft_wrap=True)  # soft wrap: snippets stay copy-pasteable
    total = len(plan(profile)) + RANDOM_EXAMPLES
    runs: list[TargetRun] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        for target in targets:
            task = progress.add_task(target, total=total)
            runs.append(run_target(target, profile, pytest_args, progress, task))
    for run in runs:
        print_run(run, console)
    code = EXIT_CONFORMANT
    for run in runs:
        if run.load_error:
            code = EXIT_USAGE
        elif not run.records:
            tail = "\n".join(run.output.strip().splitlines()[-15:])
            console.print(f"[red]rope-suite: {run.target}: pytest ran no case (exit {run.returncode})[/red]")
            console.print(tail, markup=False)
            code = max(code, EXIT_USAGE if run.returncode in (2, 4) else EXIT_NONCONFORMANT)
        elif run.verdict != "conformant":
            code = max(code, EXIT_NONCONFORMANT)
    if json_path:
        reports = [run.report() for run in runs]
        Path(json_path).write_text(json.dumps(reports[0] if len(reports) == 1 else reports, indent=1))
        console.print(f"rope-suite: report written to {json_path}")
    return code


def expand(targets: list[str], all_registered: bool) -> list[str]:
    """The target names, groups (first-party, third-party, all) expanded so each runs alone."""
    names = (["all"] if all_registered else []) + targets
    return [t.name for t in resolve(names)] if names else []
