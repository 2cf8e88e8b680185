"""The report's content model, independent of its format: sections of tables and figures.
:mod:`rope_suite.reports.render` writes a :class:`Report` as self-contained HTML and as Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cell:
    text: str
    css: str = ""  # ok | bad | na | none | num: colour or alignment in HTML
    title: str = ""  # the full text when ``text`` is shortened


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]


@dataclass
class Figure:
    name: str  # file-name stem
    alt: str
    png: bytes


@dataclass
class Section:
    anchor: str
    title: str
    intro: list[str] = field(default_factory=list)
    blocks: list[tuple[str, Table | Figure]] = field(default_factory=list)  # (subtitle, block)


@dataclass
class Report:
    title: str
    generated: str
    sources: list[str]
    sections: list[Section]


def ok_rows(rows: list[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "ok" and all(r.get(k) == v for k, v in where.items())]


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def ms(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v * 1e3:.3f} ms" if v >= 1e-4 else f"{v * 1e6:.2f} µs"


def num(v: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if v is None else fmt.format(v)


def machine_name(machine: dict[str, Any]) -> str:
    gpu = f", {machine['gpus'][0]}" if machine.get("gpus") else ""
    return f"{machine.get('cpu_model')} x{machine.get('cpu_cores')}{gpu} [{machine.get('machine_id')}]"


def run_label(run: dict[str, Any], machines: dict[str, Any]) -> str:
    """``CPU xN [machine], run RUN (profile, allocator)``: what a row of a report is measured on."""
    machine = machines.get(run["machine_id"], {"machine_id": run["machine_id"]})
    allocator = run.get("allocator") or "system"
    return f"{machine_name(machine)}, run {run['run_id']} ({run['profile']}, {allocator.split(':')[0]} allocator)"


def runs(inputs: Any) -> list[tuple[str, str]]:
    """(run_id, label) of every run among the inputs, in input order."""
    return [(r["run_id"], run_label(r, inputs.machines)) for r in inputs.runs]
