"""The benchmark results schema (versioned), and validation with errors that name file and field.

A results file is one JSON document::

    {"schema": "rope-suite-bench-results", "schema_version": 1,
     "runs": [{"run_id", "machine_id", "created", "profile", "command"}],
     "machines": {machine_id: fingerprint}, "rows": [row, ...], "pytest_benchmark": [file, ...]}

in long format: one row per measured point (implementation x case x timing method), the
case's coordinates as columns (shape, phase, dtype, direction, mode, ...), the measurements
(seconds, bytes, GB/s, fractions) as nullable numbers. A run in progress streams the same rows
as JSON Lines: a header line ``{"schema": "rope-suite-bench-stream", "schema_version": 1,
"run": {...}, "machine": {...}}``, then one row per line as each case finishes.
"""

from __future__ import annotations

from typing import Any

from rope_suite.conformance.frameworks import FLOAT_DTYPES

SCHEMA_VERSION = 1
RESULTS = "rope-suite-bench-results"
STREAM = "rope-suite-bench-stream"
TIMINGS: tuple[str, ...] = ("wall", "cuda-events", "cuda-graph")
STATUSES: tuple[str, ...] = ("ok", "skipped", "error")
KINDS: tuple[str, ...] = ("first-party", "third-party", "noop", "plug-in")

_num = {"type": ["number", "null"], "minimum": 0}
_int = {"type": ["integer", "null"], "minimum": 0}
_str = {"type": ["string", "null"]}

ROW: dict[str, Any] = {
    "type": "object",
    "required": ["run_id", "machine_id", "implementation", "kind", "framework", "device", "case", "shape", "phase",
                 "spec", "batch", "seq", "heads_q", "heads_k", "head_dim", "dtype", "direction", "mode", "timing",
                 "status", "reason", "median_s", "bytes_moved", "gbps", "fraction_of_copy"],
    "properties": {
        "run_id": {"type": "string", "minLength": 1},
        "machine_id": {"type": "string", "minLength": 1},
        "implementation": {"type": "string", "minLength": 1},
        "kind": {"enum": list(KINDS)},
        "framework": _str, "device": _str,
        "case": {"type": "string", "minLength": 1},
        "shape": {"type": "string"}, "phase": {"type": "string"}, "spec": {"type": "string"},
        "batch": {"type": "integer", "minimum": 1}, "seq": {"type": "integer", "minimum": 1},
        "heads_q": {"type": "integer", "minimum": 1}, "heads_k": {"type": ["integer", "null"], "minimum": 1},
        "head_dim": {"type": "integer", "minimum": 2}, "rotary_dim": {"type": "integer", "minimum": 2},
        "dtype": {"enum": list(FLOAT_DTYPES)},
        "direction": {"enum": ["forward", "forward+backward"]},
        "mode": {"enum": ["q", "qk"]},
        "timing": {"enum": list(TIMINGS)},
        "status": {"enum": list(STATUSES)},
        "reason": _str,
        "median_s": _num, "iqr_s": _num, "min_s": _num, "max_s": _num, "mean_s": _num, "stddev_s": _num,
        "rounds": _int, "iterations": _int,
        "bytes_moved": _int, "gbps": _num,
        "copy_median_s": _num, "copy_gbps": _num, "fraction_of_copy": _num,
        "machine_copy_gbps": _num, "fraction_of_machine_copy": _num,
        "speedup_vs_torch_eager": _num,
        "first_call_s": _num, "compile_s": _num,
        "peak_memory_bytes": _int, "peak_memory_method": _str,
        "elements": _int, "work_fixed_s": _num, "work_per_element_s": _num, "copy_fixed_s": _num,
        "copy_per_element_s": _num, "work_s": _num, "work_case_s": _num, "work_ceiling": _num,
        "work_cut_elements": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1}},
        "work_cut_s": {"type": ["array", "null"], "items": {"type": "number", "minimum": 0}},
        "work_reason": _str,
    },
    "allOf": [{"if": {"properties": {"status": {"const": "ok"}}},
               "then": {"properties": {"median_s": {"type": "number"}, "gbps": {"type": "number"}}}}],
}

MACHINE: dict[str, Any] = {
    "type": "object",
    "required": ["machine_id", "cpu_model", "cpu_cores", "gpus", "versions", "git_commit"],
    "properties": {
        "machine_id": {"type": "string"}, "cpu_model": {"type": "string"}, "cpu_id": _str,
        "cpu_simd": {"type": "array", "items": {"type": "string"}},
        "cpu_cores": {"type": ["integer", "null"]}, "cpu_cores_usable": {"type": ["integer", "null"]},
        "memory_bytes": {"type": ["integer", "null"]}, "llc_bytes": {"type": ["integer", "null"]},
        "os": {"type": "string"},
        "gpus": {"type": "array", "items": {"type": "string"}}, "gpu_driver": _str,
        "versions": {"type": "object", "additionalProperties": {"type": "string"}},
        "rope_suite_version": _str, "git_commit": _str, "git_dirty": {"type": ["boolean", "null"]},
    },
}

RUN: dict[str, Any] = {
    "type": "object",
    "required": ["run_id", "machine_id", "created", "profile"],
    "properties": {"run_id": {"type": "string"}, "machine_id": {"type": "string"}, "created": {"type": "string"},
                   "profile": {"type": "string"}, "command": _str, "allocator": _str, "threads": _str},
}

RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema", "schema_version", "runs", "machines", "rows"],
    "properties": {
        "schema": {"const": RESULTS},
        "schema_version": {"const": SCHEMA_VERSION},
        "runs": {"type": "array", "items": RUN},
        "machines": {"type": "object", "additionalProperties": MACHINE},
        "rows": {"type": "array", "items": ROW},
        "pytest_benchmark": {"type": "array", "items": {"type": "string"}},
    },
}

STREAM_HEADER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema", "schema_version", "run", "machine"],
    "properties": {"schema": {"const": STREAM}, "schema_version": {"const": SCHEMA_VERSION},
                   "run": RUN, "machine": MACHINE},
}


class ResultsError(ValueError):
    """A results file that is not valid: the message names the file and the field."""


def field_path(path: Any) -> str:
    """``rows[3].median_s`` from a jsonschema error's absolute path."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(document: Any, schema: dict[str, Any], where: str, limit: int = 5) -> None:
    """Raise ResultsError listing up to ``limit`` violations as ``where: field: problem``."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if not errors:
        return
    if isinstance(document, dict) and document.get("schema_version") not in (None, SCHEMA_VERSION):
        raise ResultsError(f"{where}: schema_version: {document.get('schema_version')!r} is not supported "
                           f"(this rope-suite reads version {SCHEMA_VERSION})")
    lines = [f"{where}: {field_path(e.absolute_path)}: {e.message}" for e in errors[:limit]]
    more = f"\n... and {len(errors) - limit} more" if len(errors) > limit else ""
    raise ResultsError("\n".join(lines) + more)
