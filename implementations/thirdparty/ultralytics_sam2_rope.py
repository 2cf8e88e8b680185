"""Ultralytics' SAM 2 axial RoPE: ``compute_axial_cis`` and ``apply_rotary_enc``.

Both live in ``ultralytics/models/sam/modules/utils.py`` (read from ultralytics 8.4), the
module SAM 2's ``RoPEAttention`` (``modules/blocks.py``) calls. That file imports only
``math``, ``typing`` and ``torch``, but the ``ultralytics`` package's ``__init__`` imports
OpenCV, and its model classes torchvision, neither needed for RoPE. So the file is loaded on
its own (``importlib.util.spec_from_file_location`` on the installed package's path, under a
private module name) and the package is never imported: ``pip install --no-deps ultralytics``
is enough.

What the library computes: ``compute_axial_cis(dim, end_x, end_y, theta)`` builds, for the
end_x x end_y grid in raster order (token t at x = t % end_x, y = t // end_x, float32), the
complex table ``cat(polar(1, x * f), polar(1, y * f))`` [end_x * end_y, dim/2] with
``f = 1 / theta ** (arange(0, dim, 4)[:dim/4] / dim)`` (float32), so the first dim/4 complex
pairs turn with x and the last dim/4 with y. ``apply_rotary_enc(xq, xk, freqs_cis)`` views
adjacent channels as complex numbers (``view_as_complex(x.float().reshape(..., -1, 2))``),
multiplies by the table (complex64) and rounds back to x's dtype (``type_as``).

Spec -> call:
  * Only SAM-2-like specs: ``multi_axis=Axial2D()``, ``convention="interleaved"`` (the complex
    view pairs adjacent channels), ``rotary_dim == head_dim`` (the whole head turns), no
    ``scaling``. ``head_dim`` -> ``dim``; ``base`` -> ``theta``; ``scale_pos`` stays 1.
  * positions [batch, seq, 2] = (x, y) per token. Each entry of the end_x x end_y table
    depends only on its own cell's coordinate (the x half on x, the y half on y), so instead of
    the whole grid (quadratic in the positions) the adapter has the library build two strips:
    ``compute_axial_cis(dim, max(x) + 1, 1)``, whose row x holds x's half, and
    ``compute_axial_cis(dim, 1, max(y) + 1)``, whose row y holds y's half; a token takes the
    first dim/4 columns of row x of the one and the last dim/4 of row y of the other. These
    are exactly the numbers the full grid holds for cell (x, y): the adapter only selects. The
    strips are kept, one per spec and axis, and rebuilt only when a call needs a longer one, as
    ``RoPEAttention`` keeps its ``freqs_cis`` and recomputes it only when the feature size
    changes. Nothing is supplied: frequencies and the axis layout are the library's (only the
    grid's raster order, token t at (t % end_x, t // end_x), is replaced by each token's own
    (x, y)), so the plug-in has no ``supplied`` mapping.
  * ``apply_rotary_enc`` takes one table [seq, dim/2] broadcast over batch and heads (it
    asserts that shape), so it is called once per batch row, with x[b] as [1, heads, seq, dim].
    ``rope`` passes an empty key (seq 0): the library's own "no keys to rotate" path, which
    returns only the rotated query. ``rope_qk`` passes q and k, as ``RoPEAttention`` does.
  * ``max_position`` = :data:`MAX_POSITION` (2^20): a strip has max + 1 rows (1 GiB at
    dim 256 for 2^20); the library's grid index is a float32 ``arange``, exact below 2^24.

Precision: x goes through ``x.float()``, the table is complex64 from float32 angles, so a
float64 input loses its low bits before the rotation. supports(float64) is True, and the suite
reports what that costs (as for torchtune).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import torch

from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import Axial2D, RopeSpec

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
MAX_POSITION = 1 << 20
"""Largest x or y position: each strip table holds max + 1 rows."""


FLOAT32_ROTATION = Deviation(
    "float32-rotation", "precision choice",
    "x is rotated as complex64 (x.float() viewed as complex, times a complex64 table of float32 "
    "angles), so a float64 caller gets float32 angles and a float32 rotation.",
    "ultralytics/models/sam/modules/utils.py: compute_axial_cis, apply_rotary_enc",
    lambda record: record.get("dtype") == "float64" and record.get("check") in ("agreement", "gradient"))


REPRODUCTION = """import importlib.util
from pathlib import Path

import torch


def make():
    package = importlib.util.find_spec("ultralytics")  # utils.py alone: the package imports OpenCV
    path = Path(package.submodule_search_locations[0]) / "models" / "sam" / "modules" / "utils.py"
    spec = importlib.util.spec_from_file_location("ultralytics_sam_utils", path)
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    strips = {{}}  # axis -> compute_axial_cis strip, rebuilt only when a longer one is needed

    def strip(axis, rows):
        if axis not in strips or strips[axis].shape[0] < rows:
            end_x, end_y = (rows, 1) if axis == 0 else (1, rows)
            strips[axis] = utils.compute_axial_cis(dim={dim}, end_x=end_x, end_y=end_y, theta={theta!r})
        return strips[axis]

    def rope(x, positions):
        xy = positions.long()
        end_x = int(xy[..., 0].max()) + 1 if xy.numel() else 1
        end_y = int(xy[..., 1].max()) + 1 if xy.numel() else 1
        quarter = {dim} // 4
        tables = torch.cat((strip(0, end_x).to(positions.device)[xy[..., 0], :quarter],
                            strip(1, end_y).to(positions.device)[xy[..., 1], quarter:]), dim=-1)
        rows = []
        for b in range(x.shape[0]):
            xq = x[b:b + 1].transpose(1, 2)
            rows.append(utils.apply_rotary_enc(xq, xq[:, :, :0], tables[b])[0])
        return torch.cat(rows).transpose(1, 2)

    return rope
"""


@functools.cache
def sam_utils() -> ModuleType:
    """``ultralytics/models/sam/modules/utils.py``, loaded without importing the ultralytics package."""
    package = importlib.util.find_spec("ultralytics")
    if package is None or not package.submodule_search_locations:
        raise ImportError("ultralytics is not installed (pip install --no-deps ultralytics)")
    path = Path(package.submodule_search_locations[0]) / "models" / "sam" / "modules" / "utils.py"
    spec = importlib.util.spec_from_file_location("rope_suite_ultralytics_sam_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class UltralyticsSam2Rope:
    """SAM 2's axial RoPE from Ultralytics, as a plug-in object."""

    framework = "torch"
    device = "cpu"
    max_position = MAX_POSITION
    deviations: tuple[Deviation, ...] = (FLOAT32_ROTATION,)

    def __init__(self) -> None:
        self._strips: dict[tuple[RopeSpec, int], torch.Tensor] = {}  # (spec, axis) -> complex64 [rows, dim/2]

    def __repr__(self) -> str:
        return "UltralyticsSam2Rope()"

    def strip(self, spec: RopeSpec, axis: int, rows: int) -> torch.Tensor:
        """``compute_axial_cis`` for an end_x x 1 (axis 0) or 1 x end_y (axis 1) grid of at least
        ``rows`` cells, kept and rebuilt only when a longer one is needed."""
        table = self._strips.get((spec, axis))
        if table is None or table.shape[0] < rows:
            end_x, end_y = (rows, 1) if axis == 0 else (1, rows)
            table = sam_utils().compute_axial_cis(dim=spec.head_dim, end_x=end_x, end_y=end_y, theta=spec.base)
            self._strips[(spec, axis)] = table
        return table

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return (dtype_name in DTYPES and isinstance(spec.multi_axis, Axial2D) and spec.convention == "interleaved"
                and spec.rotary_dim == spec.head_dim and spec.scaling is None)

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Python source whose ``make()`` loads the library's utils.py and returns
        ``rope(x, positions)``: the kept strips and ``apply_rotary_enc`` of :meth:`rope`."""
        if not self.supports(spec, dtype_name):
            return None
        return REPRODUCTION.format(dim=spec.head_dim, theta=spec.base)

    def token_tables(self, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """The library's complex table row of each token, [batch, seq, head_dim/2] complex64:
        x's half from the end_x x 1 strip, y's half from the 1 x end_y strip."""
        xy = positions.long()
        if xy.numel() and int(xy.max()) > MAX_POSITION:
            raise ValueError(f"position {int(xy.max())} is invalid: this adapter builds SAM 2's tables "
                             f"for x, y <= {MAX_POSITION}")
        end_x = int(xy[..., 0].max()) + 1 if xy.numel() else 1
        end_y = int(xy[..., 1].max()) + 1 if xy.numel() else 1
        strip_x = self.strip(spec, 0, end_x).to(positions.device)
        strip_y = self.strip(spec, 1, end_y).to(positions.device)
        quarter = spec.head_dim // 4  # complex pairs per axis
        return torch.cat((strip_x[xy[..., 0], :quarter], strip_y[xy[..., 1], quarter:]), dim=-1)

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k [batch, seq, heads, head_dim] (head counts may differ) rotated at (x, y) positions
        [batch, seq, 2]: ``apply_rotary_enc`` per batch row, heads before seq as in RoPEAttention."""
        tables = self.token_tables(positions, spec)
        apply = sam_utils().apply_rotary_enc
        rows = [apply(q[b:b + 1].transpose(1, 2), k[b:b + 1].transpose(1, 2), tables[b]) for b in range(q.shape[0])]
        return (torch.cat([qb for qb, _ in rows]).transpose(1, 2),
                torch.cat([kb for _, kb in rows]).transpose(1, 2))

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at (x, y) positions [batch, seq, 2]; the key is
        empty, the library's query-only path."""
        tables = self.token_tables(positions, spec)
        apply = sam_utils().apply_rotary_enc
        rows = []
        for b in range(x.shape[0]):
            xq = x[b:b + 1].transpose(1, 2)
            rows.append(apply(xq, xq[:, :, :0], tables[b])[0])
        return torch.cat(rows).transpose(1, 2)


SAM2 = UltralyticsSam2Rope()
