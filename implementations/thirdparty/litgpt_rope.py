"""litgpt's RoPE: ``build_rope_cache`` and ``apply_rope`` / ``apply_rope_interleave``.

All three live in ``litgpt/model.py`` (read from litgpt 0.5.13), the single file that defines
litgpt's ``GPT``. It is imported as ``litgpt.model``: the package ``__init__`` imports
``litgpt.api``, hence Lightning Fabric and transformers (about 10 s and 3,900 modules on first
import), but loading model.py on its own would not avoid that, because model.py itself imports
``litgpt.config`` and ``litgpt.scripts.convert_hf_checkpoint``, which import the package.
``pip install --no-deps litgpt`` plus ``lightning`` (and ``psutil``) is enough.

What the library computes, and how its GPT uses it:
  * ``build_rope_cache(seq_len, n_elem, base, condense_ratio, extra_config)`` -> (cos, sin),
    each [seq_len, n_elem] float32: theta = 1 / base^(arange(0, n_elem, 2) / n_elem) (float32),
    adjusted by ``extra_config`` (Llama 3 when it has ``original_max_seq_len`` and the
    low/high frequency factors, YaRN when it has ``beta_fast``/``beta_slow``, else linear
    theta / factor), positions ``arange(seq_len).float() / condense_ratio``, angles
    ``outer(positions, theta).repeat(1, 2)`` (the rotate-half layout), times YaRN's
    ``attention_scaling`` (1 unless ``mscale`` / ``mscale_all_dim`` are given).
  * ``GPT`` builds the pair once (``GPT.rope_cache``, from ``config.rope_adjustments``) when
    ``max_seq_length`` is first set and rebuilds it only when ``max_seq_length`` changes;
    ``GPT.forward`` picks each token's row with ``batched_index_select(self.cos, 0,
    input_pos)`` (per-row positions [B, T]); ``CausalSelfAttention.forward`` rotates
    ``q[..., :rope_n_elem]`` with ``apply_rope`` (or ``apply_rope_interleave`` when
    ``config.rope_interleave``) on q laid out [B, n_head, T, head_size] and concatenates the
    rest back (``torch.cat((q_roped, q[..., rope_n_elem:]), dim=-1)``).

The adapter does exactly that: one (cos, sin) pair kept per spec, built with
``seq_len`` = the call's max(position) + 1 rounded up to a multiple of 4096 and rebuilt
(longer) only when a later call needs a longer one, as setting a larger ``max_seq_length``
would; :func:`litgpt_rotate` is the attention's code path (row selection, ``apply_rope`` on
the first r channels of x.transpose(1, 2), the tail concatenated back).

Spec -> call:
  * ``rotary_dim`` -> ``n_elem`` (litgpt's ``rope_n_elem = int(rotary_percentage *
    head_size)``: the adapter passes the resolved value r, so no rounding of r/D applies);
    the exponent denominator is n_elem and the tail passes through, HF's partial rotary.
  * ``base`` -> ``base`` (typed ``int`` in litgpt; the float is passed as it is).
  * ``convention`` "half" -> ``apply_rope`` (rotate-half). "interleaved" -> litgpt's own
    ``apply_rope_interleave`` (``config.rope_interleave``, DeepSeek-V3 checkpoints): it
    regroups x's channels (2i, 2i+1) into (i, i + r/2), rotates them as rotate-half and returns
    them in that regrouped order, like HF's ``apply_rotary_pos_emb_interleave`` (attention is
    unchanged because q and k are regrouped alike). The adapter moves the r output channels
    back to x's own order (:func:`._layout.to_interleaved`, an exact gather, no arithmetic),
    so the numbers are litgpt's in the spec's layout.
  * ``scaling`` -> ``extra_config``, the dict ``GPT.rope_cache`` builds from
    ``rope_adjustments`` (key ``original_max_seq_len`` for HF's
    ``original_max_position_embeddings``):
      - :data:`LITGPT`: ``linear`` -> ``{"factor"}`` (as litgpt's Gemma 3 configs set it);
        ``llama3`` -> ``{"factor", "low_freq_factor", "high_freq_factor",
        "original_max_seq_len"}``; ``yarn`` -> ``{"factor", "beta_fast", "beta_slow",
        "original_max_seq_len"}`` (beta_fast 32, beta_slow 1 when the spec leaves them out:
        HF's defaults, which litgpt requires to be written), plus ``mscale`` and
        ``mscale_all_dim`` exactly when the spec sets them, and ``truncate`` when the spec
        sets it (``build_rope_cache`` reads it; ``GPT.rope_cache`` does not copy it from
        ``rope_adjustments``, so a litgpt model config cannot turn truncation off).
        A YaRN ``attention_factor`` has no litgpt key: unsupported. (With ``mscale_all_dim``
        set, litgpt's attention also multiplies its softmax scale by
        ``yarn_get_mscale(factor, mscale_all_dim)^2``, DeepSeek's convention, outside RoPE and
        not tested here.) ntk, dynamic and longrope are not in litgpt: unsupported.
      - :data:`LITGPT_CONDENSE`: litgpt's other linear interpolation, ``rope_condense_ratio``
        (``condense_ratio``: positions divided by it, e.g. LLaMA-2-7B-32K's 8): only
        ``linear`` specs whose factor is an integer (the config field is an ``int``).
  * ``multi_axis``: unsupported (litgpt has one position stream).
  * ``rope_qk``: q and k rotated with the same rows, as the attention does (head counts may
    differ). ``max_position`` = :data:`MAX_POSITION`.

Precision: the tables are float32 (float32 theta and positions); ``apply_rope`` multiplies x
by them with type promotion (float32 arithmetic for float16/bfloat16 x, float64 arithmetic on
float32 cos/sin for float64 x) and rounds once to x's dtype (``.to(dtype=x.dtype)``).
supports(float64) is True; the suite reports the float32 angles.

Nothing is supplied: frequencies, scaling, YaRN's attention scaling and the rotation are
litgpt's (the adapter only selects, slices and moves channels, as the attention does).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import torch

from rope_suite.conformance.deviations import Deviation, rope_type
from rope_suite.conformance.spec import RopeSpec

from . import _layout
from ._layout import interleaved_order
from ._tables import table_length

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
MAX_POSITION = 1 << 20
"""Largest position a table is built for (2^20 + 4096 rows: 1 GiB of cos + sin at r = 128)."""
WHERE = "litgpt/model.py"



def litgpt_rotate(x: torch.Tensor, positions: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  rotary_dim: int, interleave: bool) -> torch.Tensor:
    """x [batch, seq, heads, head_dim] through litgpt's attention path: the rows of ``cos``/``sin``
    [seq_len, rotary_dim] at ``positions`` [batch, seq] (``batched_index_select``, as
    ``GPT.forward``), ``apply_rope`` (or ``apply_rope_interleave``) on the first ``rotary_dim``
    channels of x laid out [batch, heads, seq, head_dim], the rest concatenated back
    (``CausalSelfAttention.forward``). An interleaved result comes back in litgpt's regrouped
    order (pairs (i, i + r/2)) and is moved to x's order (2i, 2i + 1) by an exact gather."""
    from litgpt.model import apply_rope, apply_rope_interleave, batched_index_select

    xt = x.transpose(1, 2)
    cos_rows, sin_rows = batched_index_select(cos, 0, positions), batched_index_select(sin, 0, positions)
    if interleave:
        roped = apply_rope_interleave(xt[..., :rotary_dim], cos_rows, sin_rows)
        roped = roped.index_select(-1, interleaved_order(rotary_dim, rotary_dim).to(roped.device))
    else:
        roped = apply_rope(xt[..., :rotary_dim], cos_rows, sin_rows)
    return torch.cat((roped, xt[..., rotary_dim:]), dim=-1).transpose(1, 2)



def _yarn_without_mscale(record: Mapping[str, Any]) -> bool:
    scaling = (record.get("spec") or {}).get("scaling") or {}
    return scaling.get("rope_type") == "yarn" and not scaling.get("mscale") and not scaling.get("mscale_all_dim")


YARN_RAMP_INVERTED = Deviation(
    "yarn-ramp-inverted", "bug",
    "build_rope_cache blends theta_interpolation * (1 - ramp) + theta_extrapolation * ramp, where YaRN (and HF's "
    "_compute_yarn_parameters) weights extrapolation by 1 - ramp: the high-frequency pairs below the correction "
    "range are divided by the factor and the low-frequency pairs above it are left unscaled, the reverse of YaRN",
    f"{WHERE}: build_rope_cache (YaRN branch: theta_extrapolation_factor = ramp_func)",
    lambda rec: rope_type(rec) == "yarn" and rec.get("status") == "failed")
YARN_NO_DEFAULT_ATTENTION_FACTOR = Deviation(
    "yarn-attention-factor-1-without-mscale", "different semantics",
    "with neither mscale nor mscale_all_dim in extra_config, build_rope_cache leaves attention_scaling at 1.0, "
    "where YaRN and HF scale cos and sin by 0.1 ln(factor) + 1 (e.g. 1.139 for Qwen2.5's factor 4)",
    f"{WHERE}: build_rope_cache (attention_scaling, YaRN branch)",
    # the checks that see only the magnitude: pair lengths, and x times the factor at position 0
    lambda rec: _yarn_without_mscale(rec) and rec.get("status") == "failed"
    and rec.get("check") in ("pair_norms", "identity_at_zero"))
FLOAT32_ANGLES = Deviation(
    "float32-angles", "precision choice",
    "the cos/sin tables are float32 (float32 theta and positions), so float64 x is rotated by float32 angles",
    f"{WHERE}: build_rope_cache",
    lambda rec: rec.get("dtype") == "float64" and rec.get("status") == "failed")


class LitgptRope:
    """litgpt's ``build_rope_cache`` + ``apply_rope`` as a plug-in object; ``condense`` takes linear
    scaling through ``rope_condense_ratio`` instead of ``rope_adjustments``."""

    framework = "torch"
    device = "cpu"
    max_position = MAX_POSITION
    deviations: tuple[Deviation, ...] = (YARN_NO_DEFAULT_ATTENTION_FACTOR, YARN_RAMP_INVERTED, FLOAT32_ANGLES)

    def __init__(self, condense: bool) -> None:
        self.condense = condense
        self._tables: dict[RopeSpec, tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"LitgptRope(condense={self.condense})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES or spec.multi_axis is not None:
            return False
        if self.condense:
            return spec.rope_type == "linear" and spec.scaling.factor.is_integer()
        if spec.rope_type == "yarn":
            return spec.scaling.attention_factor is None
        return spec.rope_type in ("default", "linear", "llama3")

    def cache_arguments(self, spec: RopeSpec) -> dict[str, Any]:
        """``build_rope_cache``'s keyword arguments for ``spec``, all but ``seq_len``."""
        if not self.supports(spec, "float32"):
            raise ValueError(f"spec {spec.to_dict()} is invalid for {self!r}: see supports() and the module docstring")
        s, kind = spec.scaling, spec.rope_type
        extra: dict[str, Any] | None = None
        condense_ratio = 1
        if kind == "linear" and self.condense:
            condense_ratio = int(s.factor)
        elif kind == "linear":
            extra = {"factor": s.factor}
        elif kind == "llama3":
            extra = {"factor": s.factor, "low_freq_factor": s.low_freq_factor, "high_freq_factor": s.high_freq_factor,
                     "original_max_seq_len": s.original_max_position_embeddings}
        elif kind == "yarn":
            extra = {"factor": s.factor, "beta_fast": 32.0 if s.beta_fast is None else s.beta_fast,
                     "beta_slow": 1.0 if s.beta_slow is None else s.beta_slow,
                     "original_max_seq_len": s.original_max_position_embeddings}
            extra.update({key: getattr(s, key) for key in ("mscale", "mscale_all_dim", "truncate")
                          if getattr(s, key) is not None})
        return dict(n_elem=spec.rotary_dim, base=spec.base, condense_ratio=condense_ratio, extra_config=extra)

    def tables(self, spec: RopeSpec, needed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """litgpt's (cos, sin) for ``spec`` holding at least ``needed`` positions: kept, and rebuilt
        longer only when a call needs more rows (as a larger ``max_seq_length`` would)."""
        if needed > MAX_POSITION + 1:
            raise ValueError(f"position {needed - 1} is invalid: this adapter builds litgpt's cos/sin tables for "
                             f"positions <= {MAX_POSITION}")
        kept = self._tables.get(spec)
        if kept is None or kept[0].shape[0] < needed:
            build = importlib.import_module("litgpt.model").build_rope_cache
            kept = build(seq_len=table_length(needed), **self.cache_arguments(spec))
            self._tables[spec] = kept
        return kept

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k [batch, seq, heads, head_dim] (head counts may differ) rotated at positions [batch, seq]."""
        return self.rope(q, positions, spec), self.rope(k, positions, spec)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at positions [batch, seq] (litgpt's ``input_pos``)."""
        needed = int(positions.max()) + 1 if positions.numel() else 1
        cos, sin = self.tables(spec, needed)
        return litgpt_rotate(x, positions, cos, sin, spec.rotary_dim, spec.convention == "interleaved")

    def reproduction(self, spec: RopeSpec, dtype: str) -> str | None:
        """Self-contained source of ``make()``: litgpt's table for ``spec``, kept and rebuilt longer
        when a call needs it (as :meth:`tables`), and :func:`litgpt_rotate`, as :meth:`rope` calls them."""
        if not self.supports(spec, dtype):
            return None
        helpers = [table_length, _layout.interleaved_order, litgpt_rotate]
        return "\n\n".join([
            "from __future__ import annotations\n\nimport torch\nfrom litgpt.model import build_rope_cache",
            *(inspect.getsource(f) for f in helpers),
            f"def make():\n    kept = None\n\n"
            f"    def rope(x, positions):\n        nonlocal kept\n"
            f"        needed = int(positions.max()) + 1 if positions.numel() else 1\n"
            f"        if kept is None or kept[0].shape[0] < needed:\n"
            f"            kept = build_rope_cache(seq_len=table_length(needed), **{self.cache_arguments(spec)!r})\n"
            f"        return litgpt_rotate(x, positions, *kept, {spec.rotary_dim}, {spec.convention == 'interleaved'})\n\n"
            f"    return rope\n"])


LITGPT = LitgptRope(condense=False)
LITGPT_CONDENSE = LitgptRope(condense=True)
