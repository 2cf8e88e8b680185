"""Test vectors: the conformance cases as files, for implementations that are not Python.

A kernel in C, C++, CUDA, Rust or Swift will not load a Python plug-in. As ONNX's backend test
data and test262 do, ``export`` writes the cases as files any language reads, the kernel's own
test program runs over them, and ``verify`` judges what it wrote exactly as ``rope-suite
check`` judges a plug-in: the same comparison (:func:`~rope_suite.conformance.checks.within_bound`),
the same mismatch messages, JSON report and exit codes.

Exported: the cases of every check that is one rope() call judged against the float64
reference (its record has a :class:`~rope_suite.conformance.checks.OneCall`: agreement,
identity_at_zero); the other checks need what a file cannot express (:data:`NOT_EXPORTED`).

Layout (format version :data:`FORMAT_VERSION`); a case's path is its id::

    DIR/index.json                 format, format_version, the suite's version and commit, profile,
                                   filters, exported and not exported checks, every case id
    DIR/index.txt                  every case id, one per line
    DIR/<id>/case.json             the manifest: check, spec, features, dtype, storage_dtype, shapes,
                                   files, the accuracy model's parameters
    DIR/<id>/case.txt              what a C program needs, one ``key value`` per line
    DIR/<id>/x.npy                 the input, in the storage dtype
    DIR/<id>/positions.npy         <i8 (<i4 for int32 cases), [batch, seq] or [batch, seq, axes]
    DIR/<id>/reference.npy         <f8, the float64 reference output
    DIR/<id>/allowed_error.npy     <f8, per element: what the accuracy model allows
    OUTPUTS/<id>/output.npy        written by the implementation, in the storage dtype

NumPy's .npy has no bfloat16, so bfloat16 arrays are stored as float32 holding exactly
bfloat16 values (``storage_dtype``); an output must hold bfloat16 values too.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rope_suite.reports.results import write_atomic

from . import reference
from .accuracy import SAFETY, allowed_error, required_angles
from .cases import SPECS, Case
from .check_command import EXIT_CONFORMANT, EXIT_NONCONFORMANT, TargetRun, run_record
from .checks import CHECKS, CheckFailed, within_bound
from .frameworks import FLOAT_DTYPES, UNIT_ROUNDOFF, round_to
from .mismatch import Mismatch
from .plan import Planned, plan
from .records import case_record
from .spec import SCALING_TYPES, RopeSpec

FORMAT = "rope-suite-vectors"
FORMAT_VERSION = 1
STORAGE: dict[str, str] = {"float64": "<f8", "float32": "<f4", "float16": "<f2", "bfloat16": "<f4", "int64": "<i8",
                           "int32": "<i4"}
# The departures from the plain spec (rotate-half, whole head, no scaling, one position axis),
# named as in the spec's JSON: the convention, the rope_type, the multi_axis kind.
FEATURES: tuple[str, ...] = ("interleaved", "partial", *SCALING_TYPES, "mrope", "axial2d")
NOT_EXPORTED: dict[str, str] = {
    "fused_qk": "needs rope_qk(q, k), a second entry point with two outputs",
    "relative_position": "compares the implementation's outputs with each other, not with a stored reference "
                         "(agreement within the bound implies it)",
    "pair_norms": "judges the lengths of output pairs, not the outputs (agreement within the bound implies it)",
    "tail_passthrough": "judged in every exported case: the allowed error past rotary_dim is 0",
    "stateless": "needs several calls in order on one instance and on fresh ones",
    "output_contract": "needs the call's own memory (in-place writes, determinism); verify checks the output's "
                       "shape and dtype",
    "gradient": "needs a backward call (the VJP), not a forward one",
    "precision_horizon": "reported, not judged",
}


def features(spec: RopeSpec) -> list[str]:
    """The spec's departures from the plain spec, in FEATURES' order (empty: plain)."""
    found = {"interleaved": spec.convention == "interleaved", "partial": spec.rotary_dim < spec.head_dim,
             spec.rope_type: spec.scaling is not None}
    if spec.multi_axis is not None:
        found[spec.to_dict()["multi_axis"]["kind"]] = True
    return [f for f in FEATURES if found.get(f)]


def exported(profile: str, checks: list[str] | None = None, dtypes: list[str] | None = None,
             supports: list[str] | None = None) -> list[Planned]:
    """The planned cases of ``profile`` that export: those of the one-call checks, less any outside
    the filters (``checks``, ``dtypes``; ``supports``: the features an implementation has, a
    case with any other is left out; None: no filter)."""
    for name in checks or ():
        if name not in CHECKS:
            allowed = ", ".join(c.name for c in CHECKS.values() if c.one_call)
            raise ValueError(f"--check {name!r} is invalid: allowed {allowed}")
        if CHECKS[name].one_call is None:
            raise ValueError(f"--check {name!r} cannot be exported: {NOT_EXPORTED[name]}")
    for dtype in dtypes or ():
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"--dtype {dtype!r} is invalid: allowed {', '.join(FLOAT_DTYPES)}")
    for feature in supports or ():
        if feature not in FEATURES:
            raise ValueError(f"--supports {feature!r} is invalid: allowed {', '.join(FEATURES)} (or plain)")
    return [p for p in plan(profile) if CHECKS[p.check].one_call is not None
            and (checks is None or p.check in checks) and (dtypes is None or p.case.dtype in dtypes)
            and (supports is None or set(features(p.case.spec)) <= set(supports))]


def _save(path: Path, values: np.ndarray, dtype: str) -> dict[str, Any]:
    array = np.ascontiguousarray(values, dtype=STORAGE[dtype])
    np.save(path, array, allow_pickle=False)
    return {"file": path.name, "dtype": STORAGE[dtype], "shape": list(array.shape)}


def write_case(directory: Path, planned: Planned) -> None:
    """One case's arrays, its manifest (case.json) and its plain-text twin (case.txt)."""
    case, call = planned.case, CHECKS[planned.check].one_call
    spec = case.spec
    x, positions = call.inputs(case)
    folder = directory / planned.id
    folder.mkdir(parents=True)
    angles = required_angles(case.dtype)  # standard practice: float32 angles (exports are not strict)
    bound = allowed_error(x, positions, spec, case.dtype, angles)
    manifest = {
        "format_version": FORMAT_VERSION, "id": planned.id, "check": planned.check, "what": call.what,
        "case": asdict(case), "spec": spec.to_dict(), "features": features(spec),
        "attention_factor": reference.attention_factor(spec), "dtype": case.dtype,
        "storage_dtype": np.dtype(STORAGE[case.dtype]).name,
        "x": _save(folder / "x.npy", x, case.dtype),
        "positions": _save(folder / "positions.npy", positions, case.pos_dtype),
        "reference": _save(folder / "reference.npy", reference.apply(x, positions, spec), "float64"),
        "allowed_error": {**_save(folder / "allowed_error.npy", bound, "float64"), "angles": angles,
                          "safety": SAFETY, "unit_roundoff": UNIT_ROUNDOFF[case.dtype],
                          "angle_unit_roundoff": UNIT_ROUNDOFF[angles],
                          "model": "conformance/accuracy.py allowed_error: SAFETY x the first-order error of RoPE "
                                   f"with {angles} angles, plus one unit roundoff of max|x|; 0 past rotary_dim"},
        "output": {"file": "output.npy", "dtype": STORAGE[case.dtype], "shape": list(x.shape)},
    }
    (folder / "case.json").write_text(json.dumps(manifest, indent=1) + "\n")
    text = {"id": planned.id, "check": planned.check, "head_dim": spec.head_dim, "rotary_dim": spec.rotary_dim,
            "base": repr(spec.base), "convention": spec.convention, "features": " ".join(features(spec)),
            "attention_factor": repr(manifest["attention_factor"]), "dtype": case.dtype,
            "storage_dtype": manifest["storage_dtype"]}
    (folder / "case.txt").write_text("".join(f"{k} {v}\n" for k, v in text.items()))


def export(directory: Path, profile: str = "quick", checks: list[str] | None = None, dtypes: list[str] | None = None,
           supports: list[str] | None = None) -> list[Planned]:
    """Write the exported cases (:func:`exported`) and the index into ``directory``, which must be
    absent, empty or an earlier export (replaced); return the cases."""
    items = exported(profile, checks, dtypes, supports)
    if not items:
        raise ValueError("no case of the one-call checks matches the filters: nothing to export")
    if directory.exists() and any(directory.iterdir()):
        if _read_index(directory).get("format") != FORMAT:
            raise ValueError(f"{directory} is neither empty nor an export of test vectors: not overwriting it")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for item in items:
        write_case(directory, item)
    ids = [item.id for item in items]
    index = {"format": FORMAT, "format_version": FORMAT_VERSION, **run_record(profile),
             "filters": {"checks": checks, "dtypes": dtypes, "supports": supports},
             "exported_checks": {c.name: c.one_call.what for c in CHECKS.values() if c.one_call},
             "not_exported": NOT_EXPORTED, "cases": ids}
    (directory / "index.txt").write_text("".join(f"{i}\n" for i in ids))
    (directory / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return items


def _read_index(directory: Path) -> dict[str, Any]:
    """DIR/index.json as a dict ({} when unreadable or not an object)."""
    try:
        index = json.loads((directory / "index.json").read_text())
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def load_index(directory: Path) -> dict[str, Any]:
    """The export's index; a ValueError (a usage error) when ``directory`` is not an export this
    version reads."""
    index = _read_index(directory)
    if index.get("format") != FORMAT:
        raise ValueError(f"{directory} is not an export of test vectors: no {directory / 'index.json'} with "
                         f"\"format\": \"{FORMAT}\"")
    if index.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory} has format version {index.get('format_version')!r} (rope-suite "
                         f"{index.get('rope_suite_version')}); this rope-suite reads version {FORMAT_VERSION}: "
                         "export the vectors again with it")
    return index


def _case_of(manifest: dict[str, Any]) -> Planned:
    """The planned case a manifest describes; a usage error when this version's spec of that name
    differs (the export comes from another version)."""
    name = manifest["case"]["spec_name"]
    if name not in SPECS or json.loads(json.dumps(SPECS[name].to_dict())) != manifest["spec"]:
        raise ValueError(f"{manifest['id']}: spec {name!r} is not this rope-suite's: the vectors come from another "
                         "version; export them again with this one")
    return Planned(manifest["check"], Case(**manifest["case"]))


def judge(directory: Path, outputs: Path, case_id: str, target: str) -> dict[str, Any]:
    """The record of one case: its output (OUTPUTS/<id>/output.npy) against the stored reference
    and allowed error, with the record and the messages ``check`` gives. A missing or malformed
    output fails, named as such."""
    folder = directory / case_id
    try:
        manifest = json.loads((folder / "case.json").read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{directory} is a damaged export: {case_id}: {err}") from None
    planned = _case_of(manifest)
    record = case_record(target, planned)
    path = outputs / case_id / manifest["output"]["file"]

    def problem(kind: str, text: str) -> dict[str, Any]:
        return {**record, "status": "failed", "problem": kind, "reason": f"{target}: {kind}: {text}"}

    if not path.is_file():
        return problem("missing", f"no output ({path})")
    try:
        got = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        return problem("unreadable", f"{path}: {err}")
    want = manifest["output"]
    if got.dtype != np.dtype(want["dtype"]):
        return problem("wrong dtype", f"output.npy is {got.dtype.str}, but {planned.case.dtype} outputs are stored "
                                      f"as {want['dtype']}")
    if list(got.shape) != want["shape"]:
        return problem("wrong shape", f"output.npy has shape {tuple(got.shape)}, but x has {tuple(want['shape'])}")
    got = got.astype(np.float64)
    rounded = round_to(got, planned.case.dtype)
    if not np.array_equal(rounded, got, equal_nan=True):
        first = [int(i) for i in np.argwhere(~((rounded == got) | np.isnan(got)))[0]]
        return problem(f"not {planned.case.dtype}", f"output.npy holds values that are not {planned.case.dtype} "
                                                    f"(first {got[tuple(first)]:.9g} at x{first})")
    positions = np.load(folder / manifest["positions"]["file"])
    bound = np.load(folder / manifest["allowed_error"]["file"])
    try:
        outcome = within_bound(planned.check, manifest["what"], target, planned.case, positions, got,
                               np.load(folder / manifest["reference"]["file"]), bound)
    except CheckFailed as failed:
        return {**record, "status": "failed", "reason": failed.mismatch.render(), "mismatch": failed.mismatch.fields(),
                "max_abs_err": failed.outcome.max_abs_err, "max_rel_err": failed.outcome.max_rel_err,
                "bound": failed.outcome.bound}
    return {**record, "status": "passed", "max_abs_err": outcome.max_abs_err, "max_rel_err": outcome.max_rel_err,
            "bound": outcome.bound}


def verify(directory: Path, outputs: Path, json_path: str | None = None, verbose: bool = False) -> int:
    """Judge every case of the export in ``directory`` on the outputs under ``outputs``; print the
    counts per check, one line per failure (``verbose``: the full message) and the verdict; write
    ``json_path`` (check's report); return check's exit code."""
    index = load_index(directory)
    if not outputs.is_dir():
        raise ValueError(f"{outputs} is not a directory of outputs (OUTPUTS/<case id>/output.npy)")
    target = str(outputs)
    run = TargetRun(target, 0, [judge(directory, outputs, case_id, target) for case_id in index["cases"]])
    print(f"{target} (test vectors {directory}, rope-suite {index.get('rope_suite_version')}, profile "
          f"{index.get('profile')})")
    for check in dict.fromkeys(r["check"] for r in run.records):
        statuses = [r["status"] for r in run.records if r["check"] == check]
        print(f"  {check:<18} {statuses.count('passed'):4d} passed {statuses.count('failed'):4d} failed")
    for r in run.records:
        if r["status"] == "failed":
            line = r["reason"] if r.get("problem") else Mismatch(**r["mismatch"]).headline()
            print(f"{line}  [{r['id']}]")
            if verbose and not r.get("problem"):
                print(r["reason"])
    s = run.summary
    print(f"{target}: {run.verdict} ({s['passed']} passed, {s['failed']} failed)")
    if json_path:
        export_made = {k: index.get(k) for k in ("format_version", "rope_suite_version", "git_commit", "profile",
                                                 "filters")}
        about = {**run_record(index.get("profile")), "vectors": {"directory": str(directory), **export_made}}
        write_atomic(Path(json_path), json.dumps({**run.report(), "run": about}, indent=1))
        print(f"rope-suite: report written to {json_path}")
    return EXIT_CONFORMANT if run.verdict == "conformant" else EXIT_NONCONFORMANT
