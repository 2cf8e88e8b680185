"""First-party code never reads the suite's truth: no first-party implementation and no mutant
imports anything of ``rope_suite.conformance`` but ``spec`` (the spec value types), so their
agreement with the float64 reference tests their own frequencies, not the reference's (issue 10).

The imports are read from the source (ast) and resolved relative to each module, so nothing heavy
is imported and a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = sorted(p for p in (ROOT / "implementations").rglob("*.py") if "thirdparty" not in p.parts)
SUITE, SPEC = "rope_suite.conformance", "rope_suite.conformance.spec"


def imported_modules(source: str, package: str) -> set[str]:
    """What ``source``, a module of ``package``, imports: ``import X`` gives X; ``from X import y``
    gives X and X.y (y may be a submodule); relative imports are resolved against ``package``."""
    parts = package.split(".")
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            stem = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join(stem + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def suite_imports_beyond_the_spec(modules: set[str]) -> set[str]:
    return {m for m in modules if (m == SUITE or m.startswith(SUITE + "."))
            and m not in (SUITE, SPEC) and not m.startswith(SPEC + ".")}


@pytest.mark.parametrize("path", FIRST_PARTY, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_party_code_imports_nothing_of_the_suite_but_the_spec(path: Path) -> None:
    package = ".".join(["rope_suite", *path.relative_to(ROOT).parent.parts])
    beyond = suite_imports_beyond_the_spec(imported_modules(path.read_text(), package))
    assert not beyond, (f"{path.relative_to(ROOT)} imports {sorted(beyond)}: first-party code computes its "
                        "own numbers (implementations/frequencies.py); of the suite only its spec may be imported")


@pytest.mark.parametrize("source", [
    "from rope_suite.conformance import reference",
    "import rope_suite.conformance.reference",
    "def f():\n    from ...conformance import reference",  # relative, lazy, from implementations/mutants/
    "from ...conformance.reference import inverse_frequencies",
])
def test_the_guard_sees_every_way_of_importing_the_reference(source: str) -> None:
    found = imported_modules(source + "\nfrom rope_suite.conformance.spec import RopeSpec\n",
                             "rope_suite.implementations.mutants")
    assert suite_imports_beyond_the_spec(found) & {"rope_suite.conformance.reference"}
