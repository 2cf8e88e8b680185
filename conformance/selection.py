"""Which conformance cases a pytest session runs: the targets and profile it names, their
parametrization, the xfails/skips files, and the cases a resumed run already has."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .plan import PROFILES, plan
from .records import RANDOM_ID, read_records
from .targets import Target, resolve


def selected_targets(config: pytest.Config) -> list[Target]:
    """--impl, else the environment variable ROPE_SUITE_IMPL (comma separated), else first-party;
    free-form ones under --rope-signature when given."""
    names = config.getoption("impl") or [n for n in os.environ.get("ROPE_SUITE_IMPL", "").replace(",", " ").split() if n]
    try:
        return resolve(names, config.getoption("rope_signature"))
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None


def selected_profile(config: pytest.Config) -> str:
    """--profile, else the environment variable ROPE_SUITE_PROFILE, else full."""
    profile = config.getoption("profile") or os.environ.get("ROPE_SUITE_PROFILE", "full")
    if profile not in PROFILES:
        raise pytest.UsageError(f"ROPE_SUITE_PROFILE={profile!r} is invalid: allowed {', '.join(PROFILES)}")
    return profile


def parametrize(metafunc: pytest.Metafunc) -> None:
    """A test asking for ``rope_target`` (and ``rope_planned``) runs for every target (x every
    planned case); ids read ``implementation/check/spec/dtype/pattern``."""
    targets = selected_targets(metafunc.config)
    if "rope_planned" in metafunc.fixturenames:
        items = plan(selected_profile(metafunc.config))
        params = [(t, p) for t in targets for p in items]
        metafunc.parametrize(("rope_target", "rope_planned"), params, ids=[f"{t.name}/{p.id}" for t, p in params])
    else:
        metafunc.parametrize("rope_target", targets, ids=[t.name for t in targets])


def read_id_file(path: str, option: str) -> list[str]:
    """Non-empty, non-comment lines of an xfails/skips file; a clear error if it cannot be read."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise pytest.UsageError(f"{option} {path}: cannot read it: {err.strerror}") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def case_ids(item: pytest.Item) -> tuple[str, ...]:
    """The ids an xfails/skips entry may prefix: with and without the implementation name."""
    params = getattr(item, "callspec", None)
    if params is None or "rope_target" not in params.params:
        return ()
    target = params.params["rope_target"].name
    planned = params.params.get("rope_planned")
    local = planned.id if planned is not None else item.originalname
    return (f"{target}/{local}", local)


def mark_listed(config: pytest.Config, items: list[pytest.Item]) -> list[tuple[str, str]]:
    """Skip the items --skips-file lists and expect the failure of those --xfails-file lists (by
    case-id prefix); the entries that matched nothing, each warned about, as (kind, entry)."""
    lists = {kind: read_id_file(path, f"--{kind}-file") for kind in ("xfails", "skips")
             if (path := config.getoption(f"{kind}_file"))}
    used: set[tuple[str, str]] = set()
    for item in items:
        ids = case_ids(item)
        for kind, entries in lists.items():
            hit = next((e for e in entries if any(i.startswith(e) for i in ids)), None)
            if hit is None:
                continue
            used.add((kind, hit))
            if kind == "skips":
                item.add_marker(pytest.mark.skip(reason=f"listed in --skips-file: {hit}"))
            else:
                item.add_marker(pytest.mark.xfail(reason=f"known deviation (--xfails-file: {hit})", strict=False))
    unused = [(kind, e) for kind, entries in lists.items() for e in entries if (kind, e) not in used]
    for kind, entry in unused:
        config.issue_config_time_warning(pytest.PytestWarning(
            f"rope-suite: --{kind}-file entry {entry!r} matches no case (stale entry?)"), stacklevel=2)
    return unused


def item_key(item: pytest.Item) -> tuple[str, str] | None:
    """(implementation, case id) of a conformance test item, as its record names them."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "rope_target" not in params:
        return None
    planned = params.get("rope_planned")
    return (params["rope_target"].name, planned.id if planned is not None else RANDOM_ID)


def deselect_done(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--rope-done FILE: deselect the cases an earlier run's JSON-lines stream already has."""
    done_path = config.getoption("rope_done")
    if not done_path:
        return
    done = {(r.get("implementation"), r.get("id")) for r in read_records(Path(done_path))}
    finished = [item for item in items if item_key(item) in done]
    if finished:
        config.hook.pytest_deselected(items=finished)
        items[:] = [item for item in items if item_key(item) not in done]
