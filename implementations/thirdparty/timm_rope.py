"""timm's axial RoPE (EVA-02 style): ``RotaryEmbeddingCat.get_embed`` + ``apply_rot_embed_cat``.

Read from timm 1.0.31, ``timm/layers/pos_embed_sincos.py``. The ``timm`` package's
``__init__`` imports its models, and ``timm/layers/__init__.py`` imports ``create_norm.py``,
which imports torchvision (absent here: it has no CPU build that leaves the CPU torch in place).
So that one file is loaded without the package: a stand-in package module (a private name whose
``__path__`` is the installed ``timm/layers`` folder) is put in ``sys.modules`` and the file is
executed as its submodule with ``importlib.util.spec_from_file_location``. Its three relative
imports then load the installed sibling files and nothing else: ``_fx.py``
(``register_notrace_function``; its own torchvision import is in a ``try``/``except
ImportError``), ``grid.py`` (``ndgrid``) and ``trace_utils.py`` (``_assert``), each importing only
typing and torch. ``timm/layers/__init__.py`` never runs; ``pip install --no-deps timm`` is enough.

What the library computes: ``RotaryEmbeddingCat(dim, temperature, in_pixels=False,
rotate_half)`` (EVA's ``rope_type='cat'``: ``create_rope_embed`` gives it dim = head_dim) keeps
``bands = temperature ** -(arange(dim/4) / (dim/4))`` (``freq_bands(dim // 4, step=1)``, float32).
``get_embed(shape=(H, W))`` (bands mode, ``feat_shape=None``: EVA with ``dynamic_img_size``,
rebuilt on every call from the kept bands) builds the 'index' grid [H, W, 2] (``_build_grid``,
``meshgrid(indexing='ij')``: coordinate 0 is the row along H, coordinate 1 the column along W,
float32), angles ``grid[..., None] * bands`` [H, W, 2, dim/4], flattened axis-major to
[H*W, dim/2] (axis 0's dim/4 bands, then axis 1's), sin and cos laid out by ``_rope_layout``
(interleaved ``repeat_interleave(2)``, or with ``rotate_half=True`` ``cat(v, v)``) and returned
as ``cat([sin, cos])`` [H*W, 2*dim] in float32. ``apply_rot_embed_cat(x, emb, half)`` splits it
and computes ``x * cos + rot(x) * sin`` with ``rot`` pairing adjacent channels (2i, 2i + 1), or
``rope_rotate_half`` pairing (i, i + dim/2) when ``half``; ordinary dtype promotion (float32
sin/cos make float16/bfloat16 products float32; float64 x stays float64), then ``.to(x.dtype)``.

So with dim = r the pairs of axis 0 are the first r/4 (interleaved: channels [0, r/2); half:
pairs (i, i + r/2), i < r/4) and those of axis 1 the last r/4, each axis at
base^(-j/(r/4)) = base^(-2j/(r/2)), j < r/4: ``Axial2D`` exactly, in both pairings.

Spec -> call:
  * Only ``multi_axis=Axial2D()``, ``rotary_dim == head_dim`` (the embedding covers the whole
    head; EVA has no pass-through tail), no ``scaling`` (timm's ``ref_feat_shape`` rescales grid
    coordinates by pretrain/feature size, which is no HF scaling type). ``head_dim`` -> ``dim``;
    ``base`` -> ``temperature``; ``in_pixels=False`` (EVA-02's language bands; the default True
    gives pixel bands, which are not RoPE's frequencies).
  * ``convention="interleaved"`` -> ``rotate_half=False`` and ``half=False``; ``"half"`` ->
    ``rotate_half=True`` and ``half=True`` (EVA's ``rope_rotate_half``): both native.
  * One ``RotaryEmbeddingCat`` is built per spec and kept, as a model keeps its ``self.rope``.
  * Positions: timm addresses tokens as cells of a grid it builds from a shape, not by
    per-token positions. Each entry of the table for cell (p0, p1) depends on one coordinate
    (axis 0's columns on p0, axis 1's on p1), so instead of the whole grid (quadratic) the
    adapter asks the library for two strips per call: ``get_embed((max(p0) + 1, 1))``, whose row
    p0 is cell (p0, 0), and ``get_embed((1, max(p1) + 1))``, whose row p1 is cell (0, p1); a token
    takes axis 0's columns of the first strip's row p0 and axis 1's columns of the second's row
    p1 (which columns: the layout above, :func:`axis0_columns`). These are exactly the numbers
    the (H, W) grid's table holds for cell (p0, p1): the adapter only selects. The spec's
    position stream 0 (x) is timm's coordinate 0 (the H axis under 'ij' indexing): the spec
    only says stream 0 drives the first r/4 pairs, and timm's coordinate 0 drives those.
  * ``apply_rot_embed_cat(x, emb, half)`` with x transposed to [batch, heads, seq, head_dim] (as
    EVA's attention holds q and k) and the per-token table [batch, 1, seq, 2*dim], one call.
  * ``max_position`` = :data:`MAX_POSITION`: a strip has max + 1 rows of 2*dim float32 (64 MiB
    at dim 256 for 2^15); the grid's ``arange(...).to(float32)`` is exact below 2^24.
  * Not wired: ``RotaryEmbedding`` + ``apply_rot_embed`` (the same ``_build_embed`` tables, sin
    and cos as two tensors instead of one: the same layout and numbers); ``RotaryEmbeddingMRope``
    (Qwen3-VL's interleaved sections over one global frequency vector, but its temporal stream is
    fixed at 0 and its positions are an (H, W) grid, so ``MRope`` specs with t != 0 cannot be
    expressed); ``RotaryEmbeddingDinoV3`` ('centered' grids normalised to [-1, 1], periods) and
    ``RotaryEmbeddingMixed`` (learnt per-head frequencies): not RoPE over integer positions.

Precision: bands, grid, angles and sin/cos are float32 (standard practice); float64 x is
rotated in float64 with those float32 sin/cos. Nothing is supplied: the library computes
frequencies, the axial layout and the rotation.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import torch

from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import Axial2D, RopeSpec

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
MAX_POSITION = 1 << 15
"""Largest position on either axis: each strip holds max + 1 rows."""
PACKAGE = "rope_suite_timm_layers"
"""The stand-in package the file is loaded under (its __path__ is timm/layers)."""


@functools.cache
def pos_embed_sincos() -> types.ModuleType:
    """``timm/layers/pos_embed_sincos.py``, loaded with its sibling files but without timm's packages."""
    found = importlib.util.find_spec("timm")
    if found is None or not found.submodule_search_locations:
        raise ImportError("timm is not installed (pip install --no-deps timm)")
    layers = Path(found.submodule_search_locations[0]) / "layers"
    package = types.ModuleType(PACKAGE)
    package.__path__ = [str(layers)]  # relative imports find _fx.py, grid.py, trace_utils.py here
    sys.modules.setdefault(PACKAGE, package)
    spec = importlib.util.spec_from_file_location(f"{PACKAGE}.pos_embed_sincos", layers / "pos_embed_sincos.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def axis0_columns(dim: int, half: bool) -> torch.Tensor:
    """Which of the 2*dim columns of ``RotaryEmbeddingCat``'s table belong to axis 0, bool [2*dim]:
    the table is cat([sin, cos]), each dim wide; each holds axis 0's dim/4 bands then axis 1's,
    laid out ``repeat_interleave(2)`` (axis 0: columns < dim/2) or ``cat(v, v)`` with ``half``
    (axis 0: column mod dim/2 < dim/4) (``_rope_layout``, ``build_rotary_pos_embed``)."""
    column = torch.arange(2 * dim) % dim
    return (column % (dim // 2) < dim // 4) if half else (column < dim // 2)


def token_embeds(embedding: Any, positions: torch.Tensor, half: bool) -> torch.Tensor:
    """The table row of each token at (p0, p1) positions [batch, seq, 2], [batch, seq, 2*dim]:
    axis 0's columns from ``get_embed((max p0 + 1, 1))`` row p0, axis 1's from
    ``get_embed((1, max p1 + 1))`` row p1."""
    p = positions.long()
    strip0 = embedding.get_embed((int(p[..., 0].max()) + 1, 1))
    strip1 = embedding.get_embed((1, int(p[..., 1].max()) + 1))
    return torch.where(axis0_columns(embedding.dim, half).to(strip0.device), strip0[p[..., 0]], strip1[p[..., 1]])


def rotate(library: Any, embedding: Any, x: torch.Tensor, positions: torch.Tensor, half: bool) -> torch.Tensor:
    """x [batch, seq, heads, head_dim] at 2D positions [batch, seq, 2]: the library's
    ``apply_rot_embed_cat`` once, on x as [batch, heads, seq, head_dim] with the per-token table of
    ``embedding`` (a ``RotaryEmbeddingCat``) as [batch, 1, seq, 2*dim]."""
    emb = token_embeds(embedding, positions, half)
    return library.apply_rot_embed_cat(x.transpose(1, 2), emb.unsqueeze(1), half=half).transpose(1, 2)


FLOAT32_ANGLES = Deviation(
    "float32-angles", "precision choice",
    "bands, the index grid, angles and the sin/cos table are float32 (freq_bands, _build_grid, and "
    "get_embed's default output dtype), so a float64 input is rotated with float32 angles.",
    "timm/layers/pos_embed_sincos.py: freq_bands, _build_grid, build_fourier_pos_embed, "
    "_RotaryEmbeddingBase._build_embed",
    lambda record: record.get("dtype") == "float64" and record.get("status") == "failed")


REPRODUCTION = """import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import torch


def pos_embed_sincos():
    # timm/layers/pos_embed_sincos.py alone: timm's package __init__ imports torchvision. A stand-in
    # package whose __path__ is timm/layers lets its relative imports load _fx.py, grid.py, trace_utils.py.
    layers = Path(importlib.util.find_spec("timm").submodule_search_locations[0]) / "layers"
    package = types.ModuleType("timm_layers_alone")
    package.__path__ = [str(layers)]
    sys.modules.setdefault("timm_layers_alone", package)
    spec = importlib.util.spec_from_file_location("timm_layers_alone.pos_embed_sincos", layers / "pos_embed_sincos.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


{helpers}


def make():
    library = pos_embed_sincos()
    embedding = library.RotaryEmbeddingCat(**{kwargs!r})  # kept across calls, as EVA keeps self.rope

    def rope(x, positions):
        return rotate(library, embedding, x, positions, {half})

    return rope
"""


class TimmRope:
    """timm's ``RotaryEmbeddingCat`` on 2D axial specs, as a plug-in object."""

    framework = "torch"
    device = "cpu"
    max_position = MAX_POSITION
    deviations: tuple[Deviation, ...] = (FLOAT32_ANGLES,)

    def __init__(self) -> None:
        self._modules: dict[RopeSpec, Any] = {}

    def __repr__(self) -> str:
        return "TimmRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return (dtype_name in DTYPES and isinstance(spec.multi_axis, Axial2D) and spec.rotary_dim == spec.head_dim
                and spec.scaling is None)

    @staticmethod
    def constructor(spec: RopeSpec) -> dict[str, Any]:
        """``RotaryEmbeddingCat``'s keyword arguments for ``spec`` (EVA-02's 'cat' rope, bands mode)."""
        return dict(dim=spec.head_dim, temperature=spec.base, in_pixels=False, rotate_half=spec.convention == "half")

    def module(self, spec: RopeSpec) -> Any:
        """The ``RotaryEmbeddingCat`` for ``spec``, built once and kept."""
        if spec not in self._modules:
            self._modules[spec] = pos_embed_sincos().RotaryEmbeddingCat(**self.constructor(spec))
        return self._modules[spec]

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at (x, y) positions [batch, seq, 2]."""
        if positions.numel() and int(positions.max()) > MAX_POSITION:
            raise ValueError(f"position {int(positions.max())} is invalid: this adapter builds timm's strip tables "
                             f"for positions <= {MAX_POSITION} on each axis")
        return rotate(pos_embed_sincos(), self.module(spec), x, positions, spec.convention == "half")

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Self-contained source of ``make()``: the file loaded as :func:`pos_embed_sincos` loads it,
        one kept ``RotaryEmbeddingCat`` and :func:`rotate` (this module's own source)."""
        if not self.supports(spec, dtype_name):
            return None
        import inspect

        helpers = "\n\n".join(inspect.getsource(f) for f in (axis0_columns, token_embeds, rotate))
        return REPRODUCTION.format(helpers=helpers, kwargs=self.constructor(spec), half=spec.convention == "half")


TIMM = TimmRope()
