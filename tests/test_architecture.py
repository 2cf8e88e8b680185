"""The package's layers (``rope_suite.conformance.LAYERS``, described in its docstring) are kept:
every import between the suite's own modules, at module level or inside a function, goes to
the importer's own layer or one before it, and no chain of imports comes back to where it
started. The imports are read from the source (ast), so a lazy import counts as much as any."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from rope_suite.conformance import LAYERS

from conftest import ROOT

FOLDERS = ("conformance", "implementations", "benchmarks", "reports")


def modules() -> dict[str, Path]:
    """Every module of the package by its name under rope_suite (``conformance.spec``)."""
    found = {}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(name: str) -> Iterator[tuple[str, int]]:
    """(module of the suite, line) for every import in module ``name``."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (package[: len(package) - node.level + 1] if node.level else [])
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            target = target.removeprefix("rope_suite.")
            if target in MODULES and target != name:
                yield target, node.lineno


def layer_of(name: str) -> int | None:
    """Index in LAYERS of the entry that names ``name`` (exactly, or as a package prefix); the
    folders' ``__init__`` modules (documentation only) have none."""
    if name in FOLDERS:
        return None
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"rope_suite.{name} ({MODULES[name].relative_to(ROOT)}) is in no layer: "
                         "add it to rope_suite.conformance.LAYERS")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name: str) -> None:
    mine = layer_of(name)
    upward = [f"line {line}: {target} (layer {LAYERS[layer_of(target)][0]})" for target, line in imports(name)
              if mine is not None and layer_of(target) is not None and layer_of(target) > mine]
    assert not upward, (f"rope_suite.{name} is in layer {LAYERS[mine][0]!r} but imports a later layer:\n  "
                        + "\n  ".join(upward))


def test_no_import_cycle() -> None:
    graph = {name: sorted({target for target, _ in imports(name)}) for name in MODULES}
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in graph[name]:
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_the_walker_finds_an_upward_import_and_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks themselves: a core module that imports the runner and the commands (lazily),
    and one that imports a module which imports it back."""
    upward = tmp_path / "spec.py"
    upward.write_text("from .plugin import Tally\n\ndef later():\n    from rope_suite.conformance import cli\n")
    monkeypatch.setitem(MODULES, "conformance.spec", upward)
    found = sorted(t for t in imports("conformance.spec") if t[0] not in FOLDERS)
    assert found == [("conformance.cli", 4), ("conformance.plugin", 1)]
    with pytest.raises(AssertionError, match="imports a later layer"):
        test_imports_go_down_the_layers("conformance.spec")
    cyclic = tmp_path / "spec_cyclic.py"
    cyclic.write_text("from . import presets\n")  # presets imports spec
    monkeypatch.setitem(MODULES, "conformance.spec", cyclic)
    with pytest.raises(AssertionError, match="import cycle: .*conformance.presets -> conformance.spec"):
        test_no_import_cycle()


FIRST_PARTY = sorted(name for name in MODULES
                     if name.startswith("implementations") and not name.startswith("implementations.thirdparty"))
SPEC_ONLY = ("conformance", "conformance.spec")


def suite_truth_imported(name: str) -> list[str]:
    """The imports of ``name`` from the suite's conformance package other than the spec types."""
    return [f"line {line}: rope_suite.{target}" for target, line in imports(name)
            if target.startswith("conformance") and target not in SPEC_ONLY]


@pytest.mark.parametrize("name", FIRST_PARTY)
def test_first_party_code_reads_nothing_of_the_suite_but_the_spec(name: str) -> None:
    """First-party implementations and mutants compute their own numbers (implementations/
    frequencies.py), so their agreement with the reference tests them, not the reference."""
    beyond = suite_truth_imported(name)
    assert not beyond, (f"rope_suite.{name} imports more of rope_suite.conformance than the spec:\n  "
                        + "\n  ".join(beyond))


@pytest.mark.parametrize("source", [
    "from rope_suite.conformance import reference",
    "import rope_suite.conformance.reference",
    "def f():\n    from ...conformance import reference",  # relative and lazy, from implementations/mutants/
    "from ...conformance.reference import inverse_frequencies",
])
def test_the_first_party_guard_sees_every_way_of_importing_the_reference(
        source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "mutant.py"
    module.write_text(source + "\nfrom rope_suite.conformance.spec import RopeSpec\n")
    monkeypatch.setitem(MODULES, "implementations.mutants.throwaway", module)
    assert [line for line in suite_truth_imported("implementations.mutants.throwaway")
            if line.endswith("conformance.reference")]
