"""Resolving what the user names into implementations under test.

A target is the name of a registered implementation (``rope-suite list``), ``pkg.module``,
``pkg.module:object``, ``path/to/file.py`` or ``path/to/file.py:object``. Without an object,
the module itself is the plug-in (module-level ``framework`` and ``rope``), unless it defines
``IMPLEMENTATION``. With a signature (``--signature NAME``), the object is a bare function
with that calling convention, wrapped into a plug-in
(:mod:`rope_suite.implementations.thirdparty.signatures`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib import metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rope_suite.implementations.registry import GROUPS, REGISTRY, Implementation
from rope_suite.implementations.thirdparty.signatures import SIGNATURES, wrap

from .subject import LoadError, Subject


@dataclass(frozen=True)
class Target:
    """What to load: a registry record, or a free-form ``module[:object]`` / ``file.py[:object]``,
    a bare function when ``signature`` names its calling convention."""

    name: str
    record: Implementation | None = None
    signature: str | None = None

    @property
    def missing(self) -> str | None:
        return self.record.missing() if self.record else None

    @property
    def unavailable(self) -> str | None:
        """Why it cannot run here (a skip reason), or None."""
        return self.record.unavailable() if self.record else None

    def load(self, strict: bool = False) -> Subject:
        """Import the target and wrap it; LoadError names what went wrong."""
        return Subject(self.name, self.load_object(), strict, self.load_fresh)

    def load_object(self) -> Any:
        """The plug-in object, imported (a bare function wrapped under its --signature)."""
        if self.record is None:
            obj = load_object(self.name)
            if self.signature is not None:
                return wrap(obj, self.signature)
            if not hasattr(obj, "rope") and callable(obj) and not isinstance(obj, type):
                raise LoadError(f"{self.name}: a bare function, not a plug-in: name its calling convention with "
                                f"--signature NAME ({signature_choices()})")
            return obj
        try:
            return self.record.load()
        except Exception as err:
            raise LoadError(f"{self.name}: import of {self.record.target} failed: "
                            f"{type(err).__name__}: {err}") from err

    def load_fresh(self) -> Any:
        """A new plug-in object that has never been called: its own ``fresh()`` if it has one, else
        the module that defines it executed again under a new name (module-level caches included)."""
        obj = self.load_object()
        if callable(getattr(obj, "fresh", None)):
            return obj.fresh()
        where, _, attribute = (self.record.target if self.record else self.name).partition(":")
        module = sys.modules.get(_module_name(where))
        if module is None or not getattr(module, "__file__", None):
            raise LoadError(f"{self.name}: cannot be loaded afresh: its module has no file")
        _FRESH[0] += 1
        name = f"{module.__name__}__fresh{_FRESH[0]}"  # same package: relative imports still resolve
        spec = importlib.util.spec_from_file_location(name, module.__file__)
        fresh = importlib.util.module_from_spec(spec)
        sys.modules[name] = fresh
        try:
            spec.loader.exec_module(fresh)
        finally:
            del sys.modules[name]
        obj = getattr(fresh, attribute) if attribute else getattr(fresh, "IMPLEMENTATION", fresh)
        return wrap(obj, self.signature) if self.signature is not None and self.record is None else obj


_FRESH = [0]  # modules loaded afresh so far (their names must differ)


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or where.startswith(".")


def _module_name(where: str) -> str:
    """The sys.modules name a target's module is imported under (a file gets a name of its own)."""
    return f"rope_suite_plugin_{abs(hash(str(Path(where).resolve())))}" if _is_file(where) else where


def signature_choices() -> str:
    """The --signature names with their calling conventions, for messages."""
    return "; ".join(f"{s.name}: {s.call.split(';')[0]}" for s in SIGNATURES.values())


def load_object(spec: str) -> Any:
    """The object named by ``module[:object]`` or ``file.py[:object]``."""
    where, _, attribute = spec.partition(":")
    if _is_file(where):
        path = Path(where)
        if not path.is_file():
            raise LoadError(f"{spec}: module not found: no file {path}")
        module_name = _module_name(where)
        folder = str(path.resolve().parent)
        if folder not in sys.path:  # its sibling modules import, as when Python runs the file
            sys.path.insert(0, folder)
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            raise LoadError(f"{spec}: importing {path} failed: {type(err).__name__}: {err}") from err
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as err:
            raise LoadError(f"{spec}: module not found: {err.name or where}") from err
        except Exception as err:
            raise LoadError(f"{spec}: importing {where} failed: {type(err).__name__}: {err}") from err
    if not attribute:
        return getattr(module, "IMPLEMENTATION", module)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise LoadError(f"{spec}: attribute missing: {where} has no {attribute!r}") from None


class Loaded:
    """Each target loaded once per process; a load failure is remembered, so every later case
    of that target reports the same LoadError without importing it again."""

    def __init__(self) -> None:
        self._cache: dict[str, Subject | LoadError] = {}

    def get(self, target: Target, strict: bool = False) -> Subject:
        if target.name not in self._cache:
            try:
                self._cache[target.name] = target.load(strict)
            except LoadError as err:
                self._cache[target.name] = err
        loaded = self._cache[target.name]
        if isinstance(loaded, LoadError):
            raise loaded
        return loaded


ENTRY_POINT_GROUP = "rope_suite.implementations"


def plugin_records() -> dict[str, Implementation]:
    """Implementations that installed packages register under the ``rope_suite.implementations``
    entry-point group (name = "module:object")."""
    from importlib.metadata import entry_points
    return {ep.name: Implementation(ep.name, ep.value, framework="", first_party=False,
                                    summary=f"plug-in from {ep.dist.name if ep.dist else 'an installed package'}")
            for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known() -> dict[str, Implementation]:
    """Every implementation a name can select: the registry, then installed plug-ins."""
    return {**plugin_records(), **REGISTRY}


def library_versions(target: str, framework: str | None) -> dict[str, str]:
    """Installed versions of what a target runs on: the distributions providing its framework and
    its record's required modules (a library, its framework, its build tools)."""
    record = known().get(target)
    modules = dict.fromkeys([record.framework or framework, *record.requires] if record is not None else [framework])
    providers = metadata.packages_distributions()
    out: dict[str, str] = {}
    for module in filter(None, modules):
        for dist in providers.get(module, [module])[:1]:  # a module no distribution lists: try its own name
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
    return out


def resolve(names: list[str] | None, signature: str | None = None) -> list[Target]:
    """Targets for ``names`` (group names ``first-party``, ``third-party`` and ``all`` expand;
    ``all`` includes installed plug-ins); the first-party implementations when none are given.
    ``signature`` applies to the free-form targets (registered ones are plug-ins already); an
    unknown one is a ValueError listing the allowed names."""
    if signature is not None and signature not in SIGNATURES:
        raise ValueError(f"--signature {signature!r} is invalid: allowed {', '.join(SIGNATURES)}")
    records = known()
    groups = {**GROUPS, "all": tuple(records)}
    expanded = [member for n in (names or ["first-party"]) for member in groups.get(n, (n,))]
    return [Target(n, records.get(n), None if n in records else signature) for n in dict.fromkeys(expanded)]
