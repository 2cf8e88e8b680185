"""The two snippets of the documents this project was written from, as third-party code under test.

They live outside the project, in ``../shared/seed-snippets/`` from the project root (their
README names each one's source); they are loaded from there, never copied in. The folder is
found from the environment variable ``ROPE_SUITE_SEED_SNIPPETS`` when it is set, else beside
any folder above this file or the working directory (``<ancestor>/shared/seed-snippets``).
Without it, every case of these rows is skipped with the places looked in.

  * ``seed-000-apply-rotary-emb``: ``apply_rotary_emb(x, cos, sin)`` under ``--signature x-cos-sin``.
  * ``seed-001-apply-rotary-pos-emb``: ``apply_rotary_pos_emb(x, seq_len, dim)`` under
    ``--signature x-seq-dim``. Its deviations, read from its code, are declared below.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from pathlib import Path
from typing import Any

from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import RopeSpec

from . import signatures

ENV = "ROPE_SUITE_SEED_SNIPPETS"
FILES = {"seed-000-apply-rotary-emb": ("seed_000_apply_rotary_emb.py", "apply_rotary_emb", "x-cos-sin"),
         "seed-001-apply-rotary-pos-emb": ("seed_001_apply_rotary_pos_emb.py", "apply_rotary_pos_emb", "x-seq-dim")}


def candidates() -> list[Path]:
    """Where the snippets folder may be, in order: the environment variable alone when set."""
    if os.environ.get(ENV):
        return [Path(os.environ[ENV])]
    found: list[Path] = []
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for ancestor in start.parents if start.is_file() else (start, *start.parents):
            found.append(ancestor / "shared" / "seed-snippets")
    return list(dict.fromkeys(found))


def folder() -> Path | None:
    """The first candidate holding both snippet files, or None."""
    return next((c for c in candidates() if all((c / f).is_file() for f, _, _ in FILES.values())), None)


def unavailable() -> str | None:
    """The skip reason when the snippets cannot be found, else None."""
    if folder() is not None:
        return None
    return f"seed snippets not found: looked in {', '.join(map(str, candidates()))} (set {ENV} to the folder)"


def load_function(row: str) -> Any:
    file, function, _ = FILES[row]
    path = folder()
    if path is None:
        raise FileNotFoundError(unavailable())
    module_spec = importlib.util.spec_from_file_location(f"rope_suite_seed_{row.replace('-', '_')}", path / file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, function)


class SeedSnippet:
    """A seed snippet under its signature: the plug-in contract by delegation, with the row's
    deviations and a self-contained reproduction of a case."""

    def __init__(self, row: str, deviations: tuple[Deviation, ...] = ()) -> None:
        self.row, self.deviations = row, deviations
        file, function, signature = FILES[row]
        self.where = f"../shared/seed-snippets/{file}:{function}"
        self.wrapped = signatures.wrap(load_function(row), signature)
        self.framework, self.supplied = self.wrapped.framework, self.wrapped.supplied
        self.rope, self.supports = self.wrapped.rope, self.wrapped.supports
        self.max_position = getattr(self.wrapped, "max_position", None)

    def reproduction(self, spec: RopeSpec, dtype: str) -> str | None:
        """Python source, importing nothing of rope-suite, defining ``make()`` that returns
        ``rope(x, positions)`` (torch x [batch, seq, heads, head_dim], int positions [batch, seq])
        calling the snippet as the suite does; None for specs it cannot write out plainly (scaling,
        several position axes) or does not support."""
        if spec.scaling is not None or spec.multi_axis is not None or not self.supports(spec, dtype):
            return None
        file, function, signature = FILES[self.row]
        head = [
            "import importlib.util", "import numpy as np", "import torch", "",
            f"PATH = {str(folder() / file)!r}", f"R, BASE = {spec.rotary_dim}, {spec.base!r}", "", "",
            "def make():",
            "    loaded = importlib.util.spec_from_file_location('snippet', PATH)",
            "    module = importlib.util.module_from_spec(loaded)",
            "    loaded.loader.exec_module(module)",
            f"    f = module.{function}", "",
            "    def rope(x, positions):",
        ]
        if signature == "x-cos-sin":
            body = [
                "        theta = BASE ** (-np.arange(0, R, 2, dtype=np.float64) / R)",
                "        phi = np.asarray(positions, np.float64)[..., None] * theta  # [batch, seq, R/2]",
                "        table = lambda t: torch.from_numpy(np.concatenate([t, t], -1)[:, :, None, :]).to(x.dtype)",
                "        out = f(x[..., :R], table(np.cos(phi)), table(np.sin(phi)))",
                "        return torch.cat([out, x[..., R:]], -1)",
            ]
            helpers: list[str] = []
        else:
            body = [
                "        batch, seq, heads, _ = x.shape",
                "        rows, slot, length = token_lanes(np.asarray(positions), heads)",
                "        tokens = torch.cat([x[..., :R].reshape(batch * seq * heads, R), torch.zeros_like(x[:1, 0, 0, :R])])",
                "        laid_out = tokens[torch.as_tensor(np.where(rows < 0, batch * seq * heads, rows).reshape(-1))]",
                "        out = f(laid_out.reshape(rows.shape[0], length, R), length, R)",
                "        back = out.reshape(rows.shape[0] * length, -1)[torch.as_tensor(slot)]",
                "        return torch.cat([back.reshape(batch, seq, heads, -1), x[..., R:]], -1)",
            ]
            helpers = ["", "", inspect.getsource(signatures.token_lanes).rstrip()]
        return "\n".join([*head, *body, "", "    return rope", *helpers]) + "\n"


def _crashes_on_shapes(record: Any) -> bool:
    return "must match the size of tensor" in (record.get("reason") or "")


def _one_pair_wrong(record: Any) -> bool:
    spec = record.get("spec") or {}
    return spec.get("rotary_dim") == 2 and record.get("status") == "failed" and not _crashes_on_shapes(record)


SEED_001_DEVIATIONS = (
    Deviation("shape-error", "bug",
              "x1 = x[..., :dim//2] has dim/2 channels while cos and sin, built as cat(freqs, freqs), have dim, "
              "so x1 * cos raises a shape error for every dim above 2.",
              "seed_001_apply_rotary_pos_emb.py:apply_rotary_pos_emb", _crashes_on_shapes),
    Deviation("not-a-rotation", "bug",
              "x1 * cos + x2 * sin is not a rotation (established by reading the code, and shown by the one-pair "
              "spec, dim 2, where the shapes broadcast): it gives one value per pair, the first coordinate of a "
              "rotation by minus the angle, in both of the pair's channels, where RoPE gives "
              "(x1 cos - x2 sin, x2 cos + x1 sin).",
              "seed_001_apply_rotary_pos_emb.py:apply_rotary_pos_emb", _one_pair_wrong),
)


def seed_000() -> SeedSnippet:
    return SeedSnippet("seed-000-apply-rotary-emb")


def seed_001() -> SeedSnippet:
    return SeedSnippet("seed-001-apply-rotary-pos-emb", SEED_001_DEVIATIONS)


_ROWS = {"SEED_000": seed_000, "SEED_001": seed_001}
_loaded: dict[str, SeedSnippet] = {}


def __getattr__(name: str) -> SeedSnippet:
    """``SEED_000`` and ``SEED_001``, loaded on first use (the snippet folder may be absent)."""
    if name not in _ROWS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _loaded:
        _loaded[name] = _ROWS[name]()
    return _loaded[name]
