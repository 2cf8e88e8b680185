"""Findings: every distinct deviation a ``rope-suite check`` run found in third-party code, ready
to file upstream.

One entry per distinct deviation of a target: the failing and observed cases grouped by the
diagnosis their adapter declared (:mod:`rope_suite.conformance.deviations`), or, where none
matched, by the columns the conformance table charges them to ("not yet diagnosed": nothing
the suite found is dropped). Each entry has the library and its version, what is wrong in one
sentence, its class, the library's own code, the error, and a reproduction: a self-contained
script that calls the library directly (the adapter's ``reproduction`` source, recorded with
the case) on the case's inputs and prints what it returned against what RoPE gives, then
"reproduced" (exit 0) when the deviation shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rope_suite.conformance import reference
from rope_suite.conformance.cases import Case
from rope_suite.conformance.checks import CALL_ORDER, IN_PLACE, STATELESS_ORDER
from rope_suite.conformance.records import FAILING, OBSERVED
from rope_suite.implementations.registry import REGISTRY

from .conformance_table import charge, failing_by_cause, features_of, headline, short

UNDIAGNOSED = "not yet diagnosed"
START, END = "<!-- findings:start -->", "<!-- findings:end -->"


@dataclass
class Finding:
    """One distinct deviation of one target, with the cases that show it."""

    target: str
    framework: str
    versions: dict[str, str]
    kind: str
    summary: str
    where: str
    upstream: str
    cases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def slug(self) -> str:
        name = self.summary if self.kind == UNDIAGNOSED else self.cases[0]["deviation"]["name"]
        target = Path(self.target.partition(":")[0]).stem if "/" in self.target else self.target
        slug = "".join(c if c.isalnum() else "-" for c in f"{target}-{name}".lower())
        return "-".join(filter(None, slug.split("-")))[:80]

    @property
    def example(self) -> dict[str, Any]:
        """The case the reproduction is written for: one the script can replay, agreement first."""
        def rank(case: dict[str, Any]) -> int:
            if not case.get("reproduction") or not case.get("case"):
                return 9
            kind = script_kind(case)
            return {"value": 0, "raised": 1, "non-finite": 2, "stateless": 3, "in place": 4}.get(kind or "", 9)
        return min(self.cases, key=rank)

    @property
    def error(self) -> str:
        return headline(self.example)

    @property
    def script(self) -> str | None:
        return reproduction_script(self, self.example)


def third_party(target: str) -> bool:
    record = REGISTRY.get(target)
    return record is None or not record.first_party


def findings(reports: list[dict[str, Any]]) -> list[Finding]:
    """The distinct deviations of the third-party targets in ``reports``, in report order."""
    out: list[Finding] = []
    for report in reports:
        if not third_party(report["target"]):
            continue
        found = [c for c in report.get("checks", []) if c["status"] in FAILING or c["status"] == OBSERVED]
        failing = failing_by_cause(found)
        groups: dict[str, Finding] = {}
        for case in found:
            key, finding = _diagnosis(report, case, failing)
            groups.setdefault(key, finding).cases.append(case)
        out.extend(groups.values())
    return out


def _diagnosis(report: dict[str, Any], case: dict[str, Any], failing: dict[str, set[frozenset[str]]]
               ) -> tuple[str, Finding]:
    target, versions = report["target"], report.get("versions") or {}
    framework = report.get("framework") or ""
    found = case.get("deviation")
    if found:
        return found["name"], Finding(target, framework, versions, found["kind"], found["summary"], found["where"],
                                      found.get("upstream") or "")
    if case.get("property"):
        return f"property:{case['property']}", Finding(target, framework, versions, UNDIAGNOSED,
                                                       f"{case['property']} ({case.get('check')})", "", "")
    columns = sorted(charge(case, failing)) if features_of(case) is not None else ["drawn specs"]
    problem = case.get("problem") or "wrong numbers"
    summary = f"{problem} in {', '.join(columns) or 'cases that also fail without their features'}"
    return f"{problem}:{columns}", Finding(target, framework, versions, UNDIAGNOSED, summary, "", "")


# --- reproduction scripts ---------------------------------------------------------------------

def script_kind(case: dict[str, Any]) -> str | None:
    """How a script replays the case: compare values, expect an exception, replay the call
    order, or watch the input; None when no standalone replay is written for its check."""
    if case.get("property") == CALL_ORDER:
        return "stateless"
    if case.get("property") == IN_PLACE:
        return "in place"
    if case.get("problem") == "raised":
        return "raised"
    if case.get("problem") == "contract violation" and "non-finite" in (case.get("reason") or ""):
        return "non-finite"
    if case.get("check") in ("agreement", "identity_at_zero") and (case.get("mismatch") or {}).get("index"):
        return "value"
    return None


NATIVE = {
    "torch": '''import torch


def native(a, dtype):
    return torch.from_numpy(a).to(getattr(torch, dtype))


def host(t):
    return t.detach().to(torch.float64).numpy()
''',
    "jax": '''import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp


def native(a, dtype):
    return jnp.asarray(a, dtype=dtype)


def host(t):
    return np.asarray(t, dtype=np.float64)
''',
    "tensorflow": '''import tensorflow as tf


def native(a, dtype):
    return tf.cast(tf.constant(a), dtype)


def host(t):
    return tf.cast(t, tf.float64).numpy()
''',
    "numpy": '''def native(a, dtype):
    if dtype == "bfloat16":
        import ml_dtypes
        return a.astype(ml_dtypes.bfloat16)
    return a.astype(dtype)


def host(t):
    return np.asarray(t, dtype=np.float64)
''',
}

HEADER = '''#!/usr/bin/env python3
"""{target} ({versions}): {summary}

Class: {kind}. The library's code: {where}.
Found by rope-suite: {check} on case {case_id}.
Self-contained (numpy, {framework} and the library; not rope-suite): calls the library
directly on the case's inputs, prints what it returned against what RoPE gives, and ends
with "reproduced" (exit 0) when the deviation shows, "NOT reproduced" (exit 1) when not.
"""
import sys

import numpy as np

'''

INPUTS = '''
DTYPE, POS_DTYPE = {dtype!r}, {pos_dtype!r}
x64 = np.random.default_rng([{seed}, 0]).standard_normal({shape})  # the case's x (seeded by its id)
positions64 = np.array({positions}, dtype=np.int64)
'''

BODIES = {
    "value": '''
# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = {index}, np.array({wanted}), {allowed!r}
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{{INDEX}} at position {position}: got {{got[INDEX[3]]:.6g}}, wanted {{WANTED[INDEX[3]]:.6g}}, "
      f"error {{error[INDEX[3]]:.3g}} (allowed {{ALLOWED:.3g}}); largest error in that head {{error.max():.3g}}")
reproduced = bool(error[INDEX[3]] > ALLOWED)
''',
    "raised": '''
try:  # building what a user builds, then the call
    make()(native(x64, DTYPE), native(positions64, POS_DTYPE))
except Exception as err:
    print(f"got: {{type(err).__name__}}: {{err}}; wanted: the rotated x")
    reproduced = True
else:
    print("returned without raising")
    reproduced = False
''',
    "non-finite": '''
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))
bad = int((~np.isfinite(got)).sum())
print(f"got {{bad}} non-finite values out of {{got.size}} for finite x; wanted: every value finite")
reproduced = bad > 0
''',
    "stateless": '''
# one instance kept across calls, as inside a model, against a fresh instance per call
base = positions64 % 200
rope, reproduced, earlier = make(), False, []
for label, offset in {order}:
    positions = native(base + offset, POS_DTYPE)
    got = host(rope(native(x64, DTYPE), positions))
    fresh = host(make()(native(x64, DTYPE), positions))
    difference = float(np.abs(got - fresh).max())
    print(f"{{label}} call (max position {{int((base + offset).max())}}) after {{', '.join(earlier) or 'no call'}}: "
          f"differs from a fresh instance by {{difference:.3g}}")
    earlier.append(label)
    if difference > 0:
        reproduced = True
        break
''',
    "in place": '''
x = native(x64, DTYPE)
before = host(x).copy()
make()(x, native(positions64, POS_DTYPE))
changed = float(np.abs(host(x) - before).max())
print(f"x after the call differs from x before it by up to {{changed:.3g}}; wanted: x untouched")
reproduced = changed > 0
''',
}

FOOTER = '''
print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
'''


def reproduction_script(finding: Finding, case: dict[str, Any]) -> str | None:
    """The standalone script for ``case`` of ``finding``, or None when none can be written (no
    reproduction recorded, or a check no script replays)."""
    kind = script_kind(case)
    source, about = case.get("reproduction"), case.get("case")
    if kind is None or not source or not about:
        return None
    c = Case(**about)
    x, positions = c.inputs()
    framework = _framework(finding)
    fields = dict(dtype=c.dtype, pos_dtype=c.pos_dtype, seed=c.seed, shape=c.shape, positions=positions.tolist())
    body = BODIES[kind]
    if kind == "value":
        index = [int(i) for i in case["mismatch"]["index"]]
        b, s, h, _ = index
        wanted = reference.apply(x, positions, c.spec)[b, s, h]
        body = body.format(index=index, wanted=np.array2string(wanted, separator=", ", precision=17,
                                                              threshold=1 << 20, max_line_width=100),
                           allowed=float(case["mismatch"]["bound"]), position=positions[b, s].tolist())
    elif kind == "stateless":
        body = body.format(order=list(STATELESS_ORDER))
    else:
        body = body.format()
    header = HEADER.format(target=finding.target, summary=finding.summary, kind=finding.kind,
                           where=finding.where or "see the reproduction below",
                           versions=", ".join(f"{k} {v}" for k, v in finding.versions.items()) or "versions unknown",
                           check=case.get("check"), case_id=case.get("id"), framework=framework)
    future = [line for line in source.splitlines() if line.startswith("from __future__")]
    source = "\n".join(line for line in source.splitlines() if not line.startswith("from __future__"))
    header = header.replace("\nimport sys\n", "\n" + "".join(f"{line}\n" for line in future) + "import sys\n", 1)
    return (header + NATIVE[framework] + "\n\n# --- the library, called as its users call it (from the adapter) ---\n"
            + source.strip() + "\n\n" + INPUTS.format(**fields) + body + FOOTER)


def _framework(finding: Finding) -> str:
    framework = finding.framework
    if framework not in NATIVE:
        raise ValueError(f"{finding.target}: framework {framework!r} has no reproduction template "
                         f"(known: {', '.join(NATIVE)})")
    return framework


# --- output -----------------------------------------------------------------------------------

def write_scripts(found: list[Finding], folder: Path) -> dict[str, Path]:
    """Each finding's script as ``folder/<slug>.py``; slug -> path (findings without one are absent)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for finding in found:
        script = finding.script
        if script is not None:
            path = folder / f"{finding.slug}.py"
            path.write_text(script)
            written[finding.slug] = path
    return written


def publish(reports: list[dict[str, Any]], folder: Path, relative_to: Path) -> tuple[list[Finding], str]:
    """The findings of ``reports``, their scripts written into ``folder``, and the Markdown list
    (links relative to ``relative_to``)."""
    found = findings(reports)
    return found, markdown(found, write_scripts(found, folder), relative_to)


def markdown(found: list[Finding], scripts: dict[str, Path], relative_to: Path | None = None) -> str:
    """The findings as a Markdown list (README's section, the report's); script links relative
    to ``relative_to`` (the folder of the file the list goes into)."""
    if not found:
        return "No deviation found in third-party code."
    lines = []
    for f in found:
        versions = ", ".join(f"{k} {v}" for k, v in f.versions.items())
        path = scripts.get(f.slug)
        shown = Path(os.path.relpath(path, relative_to)) if path is not None and relative_to else path
        repro = f"[`{shown}`]({shown})" if path is not None else "no standalone script (rerun the case with rope-suite)"
        where = f" Code: `{f.where}`." if f.where else ""
        upstream = f" Upstream: {f.upstream}." if f.upstream else ""
        lines.append(f"- **`{f.target}`** ({versions}), {f.kind}: {f.summary.rstrip('.')}.{where}{upstream} "
                     f"{len(f.cases)} case(s), e.g. `{f.example.get('id')}`: {short(f.error, 220)}. "
                     f"Reproduction: {repro}.")
    return "\n".join(lines)
