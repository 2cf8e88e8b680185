"""diffusers' RoPE: ``get_1d_rotary_pos_embed`` + ``apply_rotary_emb``, and FLUX's ``FluxPosEmbed``.

Read from diffusers 0.42.1: ``diffusers/models/embeddings.py`` (``get_1d_rotary_pos_embed``,
``apply_rotary_emb``), ``diffusers/models/transformers/transformer_flux.py`` (``FluxPosEmbed``,
``FluxAttnProcessor``) and ``diffusers/models/attention_processor.py``
(``StableAudioAttnProcessor2_0.apply_partial_rotary_emb``). The diffusers package imports
without its optional dependencies, so it is imported normally (lazily, on first use).

What the library computes:
  * ``get_1d_rotary_pos_embed(dim, pos, theta, use_real, linear_factor, ntk_factor,
    repeat_interleave_real, freqs_dtype=float32)``: ``freqs = 1 / (theta * ntk_factor) **
    (arange(0, dim, 2, freqs_dtype) / dim) / linear_factor``, angles ``outer(pos, freqs)`` (an
    integer ``pos`` is promoted to ``freqs_dtype``). ``use_real=True`` returns (cos, sin) [S, dim]
    as float32 (``.float()``), laid out ``repeat_interleave(2)`` when ``repeat_interleave_real``
    ([c0, c0, c1, c1, ...], FLUX, HunyuanDiT, CogVideoX) and ``cat(c, c)`` when not (Stable Audio,
    Allegro); ``use_real=False`` returns ``polar(1, angles)``, complex64 [S, dim/2] (Lumina).
  * ``apply_rotary_emb(x, freqs_cis, use_real, use_real_unbind_dim, sequence_dim)``, real path:
    ``use_real_unbind_dim=-1`` views channels as adjacent pairs (``reshape(..., -1, 2)``) and
    rotates with ``stack([-x_imag, x_real]).flatten(3)``: the interleaved pairs (2i, 2i + 1),
    matching the ``repeat_interleave_real=True`` layout; ``use_real_unbind_dim=-2`` views them
    as two halves (``reshape(..., 2, -1)``) and rotates with ``cat([-x2, x1])``: rotate-half pairs
    (i, i + D/2), matching ``repeat_interleave_real=False``. (The two other combinations pair one
    layout with the other rotation, which turns a pair's two channels by different angles, so is
    no rotation; no diffusers model uses them.)
    ``(x.float() * cos + x_rotated.float() * sin).to(x.dtype)``: float32 products, one rounding.
    ``sequence_dim`` 1 takes x [B, S, H, D], 2 takes [B, H, S, D]; cos/sin are [S, D], one row
    of positions for the whole batch. Complex path (``use_real=False``, Lumina): ``view_as_complex
    (x.float().reshape(..., -1, 2))`` times ``freqs_cis.unsqueeze(2)`` (so x is [B, S, H, D]), back
    through ``view_as_real(...).flatten(3)`` and ``type_as(x)``: interleaved pairs only. The
    unsqueeze at dim 2 makes the table batched, [B, S, D/2] (Lumina2 gathers it per token into that
    shape); an unbatched [S, D/2] table does not broadcast.
  * ``FluxPosEmbed(theta, axes_dim)(ids)``: ids [S, n_axes] -> ``ids.float()``, then per axis k
    ``get_1d_rotary_pos_embed(axes_dim[k], ids[:, k], theta, repeat_interleave_real=True,
    use_real=True, freqs_dtype=float64)`` (float32 on MPS), cos and sin concatenated over the axes:
    axis k owns the k-th block of axes_dim[k] channels, with its own frequencies
    theta^(-2j/axes_dim[k]), j < axes_dim[k]/2, angles in float64, cos/sin rounded to float32.

Three plug-in objects (three records), because the entry points differ:

``DIFFUSERS`` ("diffusers"), the real path, one position stream:
  * ``rotary_dim`` -> ``dim``; ``base`` -> ``theta``; ``freqs_dtype`` left at its default float32.
  * ``convention="interleaved"`` -> ``repeat_interleave_real=True`` + ``use_real_unbind_dim=-1``;
    ``convention="half"`` -> ``repeat_interleave_real=False`` + ``use_real_unbind_dim=-2``: both
    pairings are native, no permutation.
  * Partial rotary (r < D): only with ``"half"``, through the library's own partial path,
    ``StableAudioAttnProcessor2_0().apply_partial_rotary_emb(x, (cos, sin))`` (one processor kept
    per adapter): it rotates ``x[..., :r]`` with ``use_real_unbind_dim=-2`` and concatenates the
    rest, with cos/sin from ``get_1d_rotary_pos_embed(r, ...)`` as Stable Audio's pipeline builds
    them (denominator r: HF partial rotary exactly). It takes x [B, H, S, D] (sequence_dim 2), so
    x goes in transposed. diffusers has no interleaved partial path: unsupported.
  * Whole head: ``apply_rotary_emb(x, (cos, sin), use_real=True, use_real_unbind_dim=...,
    sequence_dim=1)``, x in the suite's layout [B, S, H, D] (as FLUX's processor calls it).
  * ``linear`` -> ``linear_factor=factor``: the library divides every frequency by it,
    theta_i / s, HF's linear scaling exactly.
  * ``ntk`` is unsupported: ``ntk_factor`` multiplies the base (``theta * ntk_factor``), so it is
    a base multiplier, not HF's NTK factor s (base * s^(r/(r-2))); diffusers' own callers read it
    both ways (``pipeline_lumina.py`` passes its scaling factor as ``ntk_factor``,
    ``transformer_cosmos.py`` computes ``rope_scale ** (dim / (dim - 2))`` itself and folds it
    into theta). Mapping factor -> ntk_factor would put a different formula under HF's name (as
    Lumina passes it, it differs from HF's ntk by up to 5.6 on the suite's ntk-x8 example at
    positions below 4096: base * 8 against base * 8^(64/62)), and passing s^(r/(r-2)) would be the
    adapter computing the scaling. dynamic, yarn, llama3,
    longrope: not in the library.
  * ``multi_axis``: unsupported (see ``DIFFUSERS_FLUX``).
  * Positions: cos/sin take one row of positions [S] for the whole batch, so the adapter calls
    the pair once per batch row with ``pos = positions[b]`` (an integer tensor; ``torch.outer``
    promotes it to float32) on ``x[b:b+1]``, and concatenates the rows.

``DIFFUSERS_COMPLEX`` ("diffusers-complex"), the complex path (``use_real=False``, Lumina):
  * ``get_1d_rotary_pos_embed(dim=head_dim, pos=positions[b], theta=base, use_real=False,
    linear_factor=...)`` and ``apply_rotary_emb(x[b:b+1], freqs_cis[None], use_real=False)``, per
    row (the table [1, S, D/2], the batched shape the complex path takes). ``freqs_dtype`` stays at
    the function's default float32 (Lumina2 passes float64 and gathers rows of a precomputed
    table: the same elementwise numbers as computing the row's positions directly, in float64).
  * ``convention="interleaved"`` natively (the complex view pairs adjacent channels);
    ``"half"`` through the exact channel permutation of :mod:`._layout` (Meta <-> HF checkpoint
    conversion), a gather before and after, bit-exact, so every number is diffusers'.
  * ``rotary_dim == head_dim`` only (no partial path on the complex side), ``linear`` as above,
    no multi-axis.

``DIFFUSERS_FLUX`` ("diffusers-flux"), FLUX's multi-axis embedding:
  * Only 2D axial specs (``Axial2D``), ``convention="interleaved"``, ``rotary_dim == head_dim``,
    no scaling: ``FluxPosEmbed(theta=base, axes_dim=[r/2, r/2])``, kept per spec, called with
    ``ids = positions[b]`` [S, 2] (x, y) per batch row, then ``apply_rotary_emb(x[b:b+1], (cos,
    sin), sequence_dim=1)`` as ``FluxAttnProcessor`` does (use_real=True, unbind -1). The first
    r/2 channels (r/4 interleaved pairs) turn with x at theta^(-2j/(r/2)), the last r/2 with y:
    Axial2D's semantics exactly, with per-token positions (FLUX's ids are per token), so
    nothing is supplied.
  * Not M-RoPE: FLUX's three axes (axes_dim (16, 56, 56)) each restart their frequencies with
    their own denominator (theta^(-2j/axes_dim[k])), where ``MRope`` gives pair i the global
    frequency base^(-2i/r) whichever stream drives it; so ``MRope`` specs are unsupported.
    Not "half" axial: FLUX hard-codes ``repeat_interleave_real=True``.
  * HunyuanVideo's ``HunyuanVideoRotaryPosEmbed`` (``transformer_hunyuan_video.py``) is not
    wired: it is the same per-axis construction (``get_1d_rotary_pos_embed(rope_dim[k], grid[k],
    theta, use_real=True)``, blocks concatenated) over a fixed (t, h, w) grid taken from the
    shape of ``hidden_states``, so it has three axes with per-axis denominators (not ``MRope``,
    as above), takes no per-token positions, and is 2D only with a zero-width time axis, a
    configuration no HunyuanVideo model has. Its numbers are the same calls FLUX makes.

Precision: ``DIFFUSERS`` and ``DIFFUSERS_COMPLEX`` use float32 frequencies and angles (the
default ``freqs_dtype``); FLUX computes angles in float64 and rounds cos/sin to float32. Every
path rotates ``x.float()``: a float64 input is rounded to float32 before the rotation, so
float64 reaches float32 results at best (supports() is True for float64 and the suite reports
what that costs). float16 and bfloat16 are rotated in float32 and rounded once.

Nothing is supplied: the library computes frequencies, linear scaling, the axial layout and the
rotation (the adapter only slices batch rows, transposes and, for "half" on the complex path,
permutes channels).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch

from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import Axial2D, RopeSpec

from . import _layout
from ._layout import from_interleaved, to_interleaved

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
EMBEDDINGS = "diffusers/models/embeddings.py"


def rotate_real(x: torch.Tensor, positions: torch.Tensor, dim: int, theta: float, linear_factor: float,
                interleaved: bool, partial_processor: Any = None) -> torch.Tensor:
    """diffusers' real path per batch row: ``get_1d_rotary_pos_embed(dim, use_real=True)`` for the
    row's positions, then ``apply_rotary_emb`` on x [batch, seq, heads, head_dim] (sequence_dim 1),
    or, given a ``StableAudioAttnProcessor2_0``, its ``apply_partial_rotary_emb`` (x [B, H, S, D]),
    which rotates the first ``dim`` channels and passes the rest through."""
    from diffusers.models.embeddings import apply_rotary_emb, get_1d_rotary_pos_embed

    rows = []
    for b in range(x.shape[0]):
        cos_sin = get_1d_rotary_pos_embed(dim, positions[b], theta=theta, use_real=True, linear_factor=linear_factor,
                                          repeat_interleave_real=interleaved)
        if partial_processor is None:
            rows.append(apply_rotary_emb(x[b:b + 1], cos_sin, use_real=True,
                                         use_real_unbind_dim=-1 if interleaved else -2, sequence_dim=1))
        else:
            rotated = partial_processor.apply_partial_rotary_emb(x[b:b + 1].transpose(1, 2), cos_sin)
            rows.append(rotated.transpose(1, 2))
    return torch.cat(rows)


def rotate_complex(x: torch.Tensor, positions: torch.Tensor, theta: float, linear_factor: float) -> torch.Tensor:
    """diffusers' complex path (Lumina) per batch row: ``get_1d_rotary_pos_embed(use_real=False)``
    and ``apply_rotary_emb(use_real=False)`` on x [batch, seq, heads, head_dim] (interleaved pairs);
    the table gets a batch axis of 1, as the complex path takes [B, S, head_dim/2] (Lumina2's shape)."""
    from diffusers.models.embeddings import apply_rotary_emb, get_1d_rotary_pos_embed

    rows = []
    for b in range(x.shape[0]):
        freqs_cis = get_1d_rotary_pos_embed(x.shape[-1], positions[b], theta=theta, use_real=False,
                                            linear_factor=linear_factor)
        rows.append(apply_rotary_emb(x[b:b + 1], freqs_cis[None], use_real=False))  # [1, seq, head_dim/2]
    return torch.cat(rows)


def rotate_flux(pos_embed: Any, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """FLUX per batch row: ``FluxPosEmbed(ids)`` with ids = positions[b] [seq, n_axes], then
    ``apply_rotary_emb(x, (cos, sin), sequence_dim=1)`` as ``FluxAttnProcessor`` calls it."""
    from diffusers.models.embeddings import apply_rotary_emb

    return torch.cat([apply_rotary_emb(x[b:b + 1], pos_embed(positions[b]), sequence_dim=1)
                      for b in range(x.shape[0])])


def _float64_failure(record: Any) -> bool:
    return record.get("dtype") == "float64" and record.get("status") == "failed"


FLOAT32_ANGLES = Deviation(
    "float32-angles", "precision choice",
    "get_1d_rotary_pos_embed computes frequencies and angles in float32 (its freqs_dtype default) and "
    "apply_rotary_emb rotates x.float() (float32 products, complex64 on the complex path), so a float64 input "
    "gets float32 angles and a float32 rotation.",
    f"{EMBEDDINGS}: get_1d_rotary_pos_embed (freqs_dtype=torch.float32), apply_rotary_emb (x.float())",
    _float64_failure)

FLUX_FLOAT32_ROTATION = Deviation(
    "float32-rotation", "precision choice",
    "FluxPosEmbed computes angles in float64, but get_1d_rotary_pos_embed rounds cos/sin to float32 (.float()) "
    "and apply_rotary_emb rotates x.float(), so a float64 input gets float32 results.",
    f"{EMBEDDINGS}: get_1d_rotary_pos_embed (.float() cos/sin), apply_rotary_emb (x.float()); "
    "diffusers/models/transformers/transformer_flux.py: FluxPosEmbed.forward",
    _float64_failure)


def _linear_factor(spec: RopeSpec) -> float:
    return spec.scaling.factor if spec.rope_type == "linear" else 1.0


class DiffusersRope:
    """``get_1d_rotary_pos_embed`` + ``apply_rotary_emb`` as a plug-in object; ``complex_path``
    picks ``use_real=False`` (Lumina) over the real path."""

    framework = "torch"
    device = "cpu"
    deviations: tuple[Deviation, ...] = (FLOAT32_ANGLES,)

    def __init__(self, complex_path: bool) -> None:
        self.complex_path = complex_path
        self._processors: dict[RopeSpec, Any] = {}

    def __repr__(self) -> str:
        return f"DiffusersRope(complex_path={self.complex_path})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES or spec.multi_axis is not None or spec.rope_type not in ("default", "linear"):
            return False
        if spec.rotary_dim == spec.head_dim:
            return True
        return not self.complex_path and spec.convention == "half"  # Stable Audio's partial path

    def partial_processor(self, spec: RopeSpec) -> Any:
        """The kept ``StableAudioAttnProcessor2_0`` for a partial spec; None for a whole-head spec."""
        if spec.rotary_dim == spec.head_dim:
            return None
        if spec not in self._processors:
            processors = importlib.import_module("diffusers.models.attention_processor")
            self._processors[spec] = processors.StableAudioAttnProcessor2_0()
        return self._processors[spec]

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at positions [batch, seq], one library call per row."""
        if not self.complex_path:
            return rotate_real(x, positions, spec.rotary_dim, spec.base, _linear_factor(spec),
                               spec.convention == "interleaved", self.partial_processor(spec))
        if spec.convention == "interleaved":
            return rotate_complex(x, positions, spec.base, _linear_factor(spec))
        r = spec.rotary_dim
        return from_interleaved(rotate_complex(to_interleaved(x, r), positions, spec.base, _linear_factor(spec)), r)

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Self-contained source of ``make()`` returning ``rope(x, positions)``: the functions
        :meth:`rope` calls (this module's own source), with the spec's arguments."""
        if not self.supports(spec, dtype_name):
            return None
        theta, factor, r = spec.base, _linear_factor(spec), spec.rotary_dim
        if not self.complex_path:
            helpers: list[Any] = [rotate_real]
            setup = "    processor = None\n"
            if r < spec.head_dim:  # Stable Audio's partial rotary, one processor kept across calls
                setup = ("    from diffusers.models.attention_processor import StableAudioAttnProcessor2_0\n\n"
                         "    processor = StableAudioAttnProcessor2_0()\n")
            body = (f"rotate_real(x, positions, {r}, {theta!r}, {factor!r}, {spec.convention == 'interleaved'}, "
                    "processor)")
        else:
            helpers, setup = [rotate_complex], ""
            body = f"rotate_complex({{x}}, positions, {theta!r}, {factor!r})"
            if spec.convention == "interleaved":
                body = body.format(x="x")
            else:
                helpers += [_layout.interleaved_order, _layout.to_interleaved, _layout.from_interleaved]
                body = f"from_interleaved({body.format(x=f'to_interleaved(x, {r})')}, {r})"
        return _source(helpers, setup, body)


class DiffusersFlux:
    """FLUX's ``FluxPosEmbed`` + ``apply_rotary_emb`` on 2D axial specs, as a plug-in object."""

    framework = "torch"
    device = "cpu"
    deviations: tuple[Deviation, ...] = (FLUX_FLOAT32_ROTATION,)

    def __init__(self) -> None:
        self._modules: dict[RopeSpec, Any] = {}

    def __repr__(self) -> str:
        return "DiffusersFlux()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return (dtype_name in DTYPES and isinstance(spec.multi_axis, Axial2D) and spec.convention == "interleaved"
                and spec.rotary_dim == spec.head_dim and spec.scaling is None)

    @staticmethod
    def constructor(spec: RopeSpec) -> dict[str, Any]:
        """``FluxPosEmbed``'s keyword arguments: one block of r/2 channels per axis (x, then y)."""
        return dict(theta=spec.base, axes_dim=[spec.rotary_dim // 2, spec.rotary_dim // 2])

    def module(self, spec: RopeSpec) -> Any:
        """The ``FluxPosEmbed`` for ``spec``, built once and kept."""
        if spec not in self._modules:
            flux = importlib.import_module("diffusers.models.transformers.transformer_flux")
            self._modules[spec] = flux.FluxPosEmbed(**self.constructor(spec))
        return self._modules[spec]

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at (x, y) positions [batch, seq, 2]."""
        return rotate_flux(self.module(spec), x, positions)

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Self-contained source of ``make()``: one ``FluxPosEmbed`` and :func:`rotate_flux`."""
        if not self.supports(spec, dtype_name):
            return None
        setup = ("    from diffusers.models.transformers.transformer_flux import FluxPosEmbed\n\n"
                 f"    pos_embed = FluxPosEmbed(**{self.constructor(spec)!r})  # kept across calls\n")
        return _source([rotate_flux], setup, "rotate_flux(pos_embed, x, positions)")


def _source(helpers: list[Any], setup: str, body: str) -> str:
    """A reproduction: imports, the helpers' own source, and ``make()`` around ``body``."""
    return "\n\n".join([
        "from __future__ import annotations\n\nfrom typing import Any\n\nimport torch",
        *(inspect.getsource(h) for h in helpers),
        f"def make():\n{setup}\n    def rope(x, positions):\n        return {body}\n\n    return rope\n"])


DIFFUSERS = DiffusersRope(complex_path=False)
DIFFUSERS_COMPLEX = DiffusersRope(complex_path=True)
DIFFUSERS_FLUX = DiffusersFlux()
