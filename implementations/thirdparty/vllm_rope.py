"""vLLM's rotary embedding layer: ``get_rope(...)`` and the module it returns, called as a model calls it.

Read from vllm 0.32.0, ``vllm/model_executor/layers/rotary_embedding/`` (``__init__.py: get_rope``,
``base.py``, ``common.py``, one file per scaling class, ``mrope.py``, ``phi3_long_rope_scaled_rope.py``).
vLLM is not installed by ``rope-suite[all]``: it pins its own torch and transformers, so it lives
in a virtual environment of its own (``nox -s vllm``, noxfile.py); elsewhere the target reads
"not installed".

What the library computes. ``get_rope(head_size, max_position, is_neox_style, rope_parameters,
dtype)`` picks the class for ``rope_parameters["rope_type"]`` and builds, at construction, a
cos/sin table ``cos_sin_cache`` [rows, rotary_dim]: float32 positions ``arange(rows)`` times
float32 inverse frequencies ``1 / base ** (arange(0, r, 2) / r)`` (adjusted by the scaling
class), cos and sin in float32 (times YaRN's or LongRoPE's attention factor), cast to ``dtype``.
A call ``rotary(positions, query, key)`` takes query [tokens, heads * head_size] and key
[tokens, kv_heads * head_size], gathers each token's row with ``index_select`` (M-RoPE: one row
per stream, the sections recombined per frequency), rotates the first ``rotary_dim`` channels
of every head in x's dtype (``ApplyRotaryEmb.forward_static``: ``x1 * cos - x2 * sin``,
``x2 * cos + x1 * sin``; NeoX pairs the halves, GPT-J adjacent channels) and concatenates the
pass-through tail. ``get_rope`` keeps every module it builds in ``_ROPE_DICT``, keyed by its
arguments, and hands the same one back to the next caller with those arguments.

The path. The modules are vLLM ``CustomOp`` s, built under a current ``VllmConfig``; this adapter
builds them under a default ``VllmConfig()`` and calls the module itself,
``rotary(positions, q, k)``, as a model's attention does. Under the default
config (``custom_ops=["none"]``, Inductor) ``CustomOp.dispatch_forward`` binds that call to
``forward_native``, the PyTorch path every platform has (a default vLLM model runs it, compiled);
the CUDA kernel (``forward_cuda``) and the C++ kernel of vLLM's CPU build (``forward_cpu``) are
not reachable without those builds. LongRoPE (``Phi3LongRoPEScaledRotaryEmbedding``) is a plain
``nn.Module`` whose ``forward`` is its only path. ``VLLM_TARGET_DEVICE=cpu`` is set (before vLLM
is first imported) when torch sees no GPU, so vLLM's platform is the CPU one.

Spec -> ``get_rope`` (the keyword names a model passes from its HF config's ``rope_parameters``):
  * ``head_dim`` -> ``head_size``; ``base`` -> ``rope_theta``; ``convention`` "half" ->
    ``is_neox_style=True``, "interleaved" -> False; ``dtype`` -> x's dtype (a model's layers are
    built under its dtype, ``torch.get_default_dtype()``), so the table is held in x's dtype.
  * ``rotary_dim`` -> ``rope_dim`` (vLLM's own key for it; ``partial_rotary_factor`` = r / D
    means the same through ``int(head_size * factor)``, which rounds down for some r, D).
  * ``scaling``: ``rope_type`` and HF's keys as they are (``factor``, ``low_freq_factor``,
    ``high_freq_factor``, ``original_max_position_embeddings``, ``beta_fast``, ``beta_slow``,
    ``mscale``, ``mscale_all_dim``, ``attention_factor``, ``truncate``, ``short_factor``,
    ``long_factor``): default, linear, ntk, dynamic, yarn, llama3, longrope are all vLLM types.
    Two keys are vLLM's own, mapped one-to-one: dynamic's original length is
    ``max_trained_positions`` (vLLM does not read ``original_max_position_embeddings`` there), and
    LongRoPE's ``attention_factor`` is ``short_mscale`` = ``long_mscale`` (HF applies it to both).
  * ``multi_axis``: ``MRope`` with three sections -> ``mrope_section`` (and ``mrope_interleaved``
    for Qwen3-VL's layout), rope_type default or yarn (the only ones ``get_rope`` builds an
    ``MRotaryEmbedding`` for); positions [batch, seq, 3] -> [3, tokens]. ``Axial2D``: no such
    layer in ``get_rope``, unsupported.
  * LongRoPE: interleaved pairs are refused by the class (ValueError): unsupported.

``max_position`` and the served length. The table has one row per position a deployment can
reach, so ``max_position`` (a model passes its ``max_position_embeddings``) is the adapter's to
choose where the spec does not fix it:
  * default, ntk, llama3, linear, M-RoPE: the table's values do not depend on its length, so one
    module is kept per (spec, dtype) whose table holds the call's largest position, rebuilt
    longer when a call needs it (rounded up to a multiple of 4096 rows; linear's table has
    ``max_position * factor`` rows, M-RoPE's ``4 * max_position``), up to ``max_position`` =
    :data:`MAX_POSITION` (the suite skips cases beyond; a call beyond raises ValueError).
  * yarn: vLLM builds ``original_max_position_embeddings * factor`` rows whatever
    ``max_position`` says (``get_rope`` passes the original length); with M-RoPE, 4 times that.
  * dynamic and longrope: the served context is ``original_max_position_embeddings * factor``,
    the context the factor extends to. Dynamic gets it as ``max_position``: what vLLM's engine
    derives as ``max_model_len`` for a dynamic config, and what its NomicBert config passes with
    ``max_trained_positions``. (A model that hands ``get_rope`` its HF config as is, e.g. Llama,
    leaves ``max_trained_positions`` at ``max_position``; the formula then gives the unscaled
    base: no scaling at all.) LongRoPE gets it as ``max_position`` (HF's
    ``max_position_embeddings``; vLLM's attention factor is sqrt(1 + ln(max_position / original)
    / ln(original)), the spec's with this factor) and as the served ``max_model_len`` that vLLM
    reads from the current config to choose its factors (a stand-in ``model_config`` holding
    only ``max_model_len``: a real ``ModelConfig`` loads a model). LongRoPE needs an integral
    original * factor (a row count) and is unsupported otherwise.
  These tables end at the served context: a later position is past the table (vLLM's engine
  never feeds one) and the library's ``index_select`` raises IndexError.
A spec whose fixed table would exceed :data:`MAX_TABLE_ROWS` rows (e.g. LongRoPE with an
original length of 2^22 and factor 32: 2^27 rows) is unsupported: vLLM allocates it whole.

The suite's calls: x [batch, seq, heads, head_dim] -> query [tokens, heads * head_dim] (a view),
positions flattened (M-RoPE: [3, tokens]); ``rope`` passes a one-head key of zeros whose result
is dropped (M-RoPE and LongRoPE assert a key); ``rope_qk`` passes q and k with their own head
counts. Nothing is copied and nothing is supplied: frequencies, scaling, attention factor,
sections and rotation are the library's.

Precision: the table is computed in float32 and held in x's dtype, so float16/bfloat16 get
cos/sin rounded to that dtype and rotate in it (as HF does), and float64 gets float32 angles.
"""

from __future__ import annotations

import importlib
import math
import os
import types
from typing import Any

import torch

from rope_suite.conformance.deviations import Deviation, rope_type
from rope_suite.conformance.spec import MRope, RopeSpec

from ._tables import table_length

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
ROPE_TYPES: tuple[str, ...] = ("default", "linear", "ntk", "dynamic", "yarn", "llama3", "longrope")
MROPE_ROPE_TYPES: tuple[str, ...] = ("default", "yarn")
MAX_POSITION = 1 << 20
"""Largest position a growing table is built for (2^20 + 4096 rows x rotary_dim 128: 514 MiB in float32)."""
MAX_TABLE_ROWS = 1 << 21
"""Largest table a spec may fix at construction (yarn, dynamic, longrope); larger ones are unsupported."""
MROPE_POSITIONS_FACTOR = 4
"""``get_rope``'s default ``mrope_positions_factor``: M-RoPE tables hold 4 * max_position rows."""
SERVED = ("dynamic", "longrope")
"""rope_types whose table is fixed at the served context original * factor."""

TABLE_ENDS = Deviation(
    "table-ends-at-the-served-context", "different semantics",
    "YaRN, dynamic NTK and LongRoPE precompute cos/sin only for positions below the context they "
    "serve (original_max_position_embeddings * factor rows), so a later position has no angle and "
    "index_select raises IndexError, where the spec (and HF) rotate any position.",
    "vllm/model_executor/layers/rotary_embedding/yarn_scaling_rope.py: _compute_cos_sin_cache; "
    "dynamic_ntk_scaling_rope.py: _compute_cos_sin_cache; phi3_long_rope_scaled_rope.py: forward; "
    "base.py: RotaryEmbedding.forward_static (index_select)",
    lambda record: "IndexError" in (record.get("reason") or "") and rope_type(record) in ("yarn", *SERVED))

DYNAMIC_IS_CONSTANT = Deviation(
    "dynamic-ntk-base-fixed-at-the-served-length", "different semantics",
    "Dynamic NTK grows the base once, at construction, for the served length max_position "
    "(base * (factor * max_position / max_trained_positions - factor + 1) ** (r / (r - 2))) and "
    "applies it to every position, where HF grows it per call for max(position) + 1 and leaves "
    "calls within the original length unscaled.",
    "vllm/model_executor/layers/rotary_embedding/dynamic_ntk_scaling_rope.py: "
    "DynamicNTKScalingRotaryEmbedding._compute_cos_sin_cache",
    lambda record: rope_type(record) == "dynamic",
    upstream="https://github.com/vllm-project/vllm/issues/3488")

LONGROPE_FACTORS_BY_SERVED_LENGTH = Deviation(
    "longrope-factors-chosen-by-served-length", "different semantics",
    "LongRoPE chooses long or short factors once, at construction, from the served max_model_len "
    "(long whenever it exceeds original_max_position_embeddings, for every position, so that the "
    "KV cache stays valid), where HF chooses per call by max(position) + 1 > original length.",
    "vllm/model_executor/layers/rotary_embedding/phi3_long_rope_scaled_rope.py: "
    "Phi3LongRoPEScaledRotaryEmbedding.__init__ (use_long_rope)",
    lambda record: rope_type(record) == "longrope")

NTK_IS_ANOTHER_FORMULA = Deviation(
    "ntk-is-another-formula", "different semantics",
    "rope_type 'ntk' multiplies the base by factor and divides every inverse frequency by "
    "factor ** (2 / r), i.e. theta_i * factor ** (-(2i + 2) / r), where NTK-aware scaling grows the "
    "base to base * factor ** (r / (r - 2)), i.e. theta_i * factor ** (-2i / (r - 2)): the two agree "
    "only on the last pair.",
    "vllm/model_executor/layers/rotary_embedding/ntk_scaling_rope.py: NTKScalingRotaryEmbedding._compute_inv_freq",
    lambda record: rope_type(record) == "ntk")



def served_length(spec: RopeSpec) -> int:
    """original_max_position_embeddings * factor, rounded up to a whole position."""
    s = spec.scaling
    return math.ceil(s.original_max_position_embeddings * s.factor)


def rows_per_max_position(spec: RopeSpec) -> float:
    """Table rows per unit of ``max_position`` for the growing tables (linear: factor; M-RoPE: 4)."""
    if isinstance(spec.multi_axis, MRope):
        return MROPE_POSITIONS_FACTOR
    return spec.scaling.factor if spec.rope_type == "linear" else 1


def fixed_table_rows(spec: RopeSpec) -> int | None:
    """The rows of a table the spec fixes at construction, or None when it grows with the calls."""
    if spec.rope_type == "yarn":
        rows = served_length(spec)
        return rows * MROPE_POSITIONS_FACTOR if isinstance(spec.multi_axis, MRope) else rows
    if spec.rope_type == "dynamic":
        return served_length(spec)
    if spec.rope_type == "longrope":  # the short table, then the long one
        return spec.scaling.original_max_position_embeddings + served_length(spec)
    return None


def rope_parameters(spec: RopeSpec) -> dict[str, Any]:
    """The ``rope_parameters`` a model passes to ``get_rope`` for ``spec`` (HF's keys, vLLM's where noted)."""
    params: dict[str, Any] = {"rope_theta": spec.base, "rope_type": spec.rope_type}
    if spec.scaling is not None:
        params |= {k: v for k, v in spec.scaling.to_dict().items() if k != "rope_type"}
    if spec.rope_type == "dynamic":
        params["max_trained_positions"] = params.pop("original_max_position_embeddings")
    if spec.rope_type == "longrope" and "attention_factor" in params:
        params["short_mscale"] = params["long_mscale"] = params.pop("attention_factor")
    if spec.rotary_dim < spec.head_dim:
        params["rope_dim"] = spec.rotary_dim
    if isinstance(spec.multi_axis, MRope):
        params["mrope_section"] = list(spec.multi_axis.sections)
        if spec.multi_axis.interleaved:
            params["mrope_interleaved"] = True
    return params


def _vllm(module: str) -> Any:
    """A vLLM module, imported with vLLM's CPU platform selected when there is no GPU."""
    if not torch.cuda.is_available():
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    return importlib.import_module(module)


REPRODUCTION_HEADER = """import math
import os
import types

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")  # before vLLM is imported: its platform

from vllm.config import VllmConfig, set_current_vllm_config
from vllm.model_executor.layers.rotary_embedding import get_rope

"""
CALL = """        batch, seq, heads, head_dim = x.shape
        query = x.reshape(batch * seq, heads * head_dim)
        key = x.new_zeros((batch * seq, head_dim))  # a one-head key whose result is dropped
        out, _ = rotary({positions}, query, key)
        return out.reshape(x.shape)

    return rope
"""
FIXED_TABLE = REPRODUCTION_HEADER + """
def make():
    config = VllmConfig(){served}
    with set_current_vllm_config(config):
        rotary = get_rope({head_size}, max_position={max_position}, is_neox_style={neox},
                          rope_parameters={params!r}, dtype=torch.{dtype})

    def rope(x, positions):
""" + CALL
GROWING_TABLE = REPRODUCTION_HEADER + """
def make():
    config = VllmConfig()
    rotary, rows = None, 0  # the module, and the positions its table holds

    def rope(x, positions):
        nonlocal rotary, rows
        needed = int(positions.max()) + 1 if positions.numel() else 1
        if rotary is None or rows < needed:  # a longer table: the next multiple of 4096 (x {unit!r} rows)
            max_position = max(4096, -(-math.ceil(needed / {unit!r}) // 4096) * 4096)
            with set_current_vllm_config(config):
                rotary = get_rope({head_size}, max_position=max_position, is_neox_style={neox},
                                  rope_parameters={params!r}, dtype=x.dtype)
            rows = math.ceil(max_position * {unit!r})
""" + CALL


class VllmRope:
    """vLLM's ``get_rope`` layers as a plug-in object: one module kept per (spec, dtype)."""

    framework = "torch"
    device = "cpu"
    max_position = MAX_POSITION
    deviations: tuple[Deviation, ...] = (TABLE_ENDS, DYNAMIC_IS_CONSTANT, LONGROPE_FACTORS_BY_SERVED_LENGTH,
                                         NTK_IS_ANOTHER_FORMULA)

    def __init__(self) -> None:
        self._modules: dict[tuple[RopeSpec, torch.dtype], tuple[Any, int]] = {}  # -> (module, table rows)

    def __repr__(self) -> str:
        return "VllmRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES or spec.rope_type not in ROPE_TYPES:
            return False
        if spec.multi_axis is not None:
            if not isinstance(spec.multi_axis, MRope) or len(spec.multi_axis.sections) != 3:
                return False
            if spec.rope_type not in MROPE_ROPE_TYPES:
                return False
        if spec.rope_type == "longrope":
            s = spec.scaling
            if spec.convention != "half" or s.original_max_position_embeddings * s.factor != served_length(spec):
                return False
        rows = fixed_table_rows(spec)
        return rows is None or rows <= MAX_TABLE_ROWS

    def config(self, spec: RopeSpec) -> Any:
        """The ``VllmConfig`` the module is built under: the default one; for LongRoPE with a
        stand-in ``model_config`` that holds the served ``max_model_len``."""
        config = _vllm("vllm.config").VllmConfig()
        if spec.rope_type == "longrope":
            config.model_config = types.SimpleNamespace(max_model_len=served_length(spec))
        return config

    def max_position_for(self, spec: RopeSpec, needed: int) -> int:
        """``get_rope``'s ``max_position`` for a table that must hold positions < ``needed``."""
        if fixed_table_rows(spec) is not None:
            return served_length(spec)
        if needed > MAX_POSITION + 1:
            raise ValueError(f"position {needed - 1} is invalid: this adapter builds vLLM's cos/sin tables for "
                             f"positions <= {MAX_POSITION}")
        return table_length(math.ceil(needed / rows_per_max_position(spec)))

    def module(self, spec: RopeSpec, dtype: torch.dtype, needed: int) -> Any:
        """``get_rope``'s module for ``spec`` in ``dtype``, built on first use and kept; a growing
        table is rebuilt longer when a call needs more rows."""
        kept = self._modules.get((spec, dtype))
        if kept is not None and (fixed_table_rows(spec) is not None or kept[1] >= needed):
            return kept[0]
        max_position = self.max_position_for(spec, needed)
        rotary_embedding = _vllm("vllm.model_executor.layers.rotary_embedding")
        with _vllm("vllm.config").set_current_vllm_config(self.config(spec)):
            module = rotary_embedding.get_rope(spec.head_dim, max_position=max_position,
                                               is_neox_style=spec.convention == "half",
                                               rope_parameters=rope_parameters(spec), dtype=dtype)
        rows = fixed_table_rows(spec) or math.ceil(max_position * rows_per_max_position(spec))
        self._modules[(spec, dtype)] = (module, rows)
        return module

    @staticmethod
    def tokens(positions: torch.Tensor) -> torch.Tensor:
        """positions [batch, seq] -> [tokens]; [batch, seq, 3] -> [3, tokens] (vLLM's M-RoPE layout)."""
        return positions.reshape(-1) if positions.dim() == 2 else positions.reshape(-1, positions.shape[-1]).T

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k [batch, seq, heads, head_dim] (head counts may differ) rotated in one call of the
        module, as [tokens, heads * head_dim]."""
        needed = int(positions.max()) + 1 if positions.numel() else 1
        rotary = self.module(spec, q.dtype, needed)
        batch, seq = q.shape[:2]
        q_out, k_out = rotary(self.tokens(positions), q.reshape(batch * seq, -1), k.reshape(batch * seq, -1))
        return q_out.reshape(q.shape), k_out.reshape(k.shape)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] as the query, with a one-head key of zeros whose result is dropped."""
        return self.rope_qk(x, x.new_zeros((*x.shape[:2], 1, x.shape[3])), positions, spec)[0]

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Python source whose ``make()`` builds the ``VllmConfig`` and ``get_rope``'s module (a
        growing table: on the first call, and again when a call needs more rows, as :meth:`module`
        does) and returns ``rope(x, positions)``: the call of :meth:`rope`."""
        if not self.supports(spec, dtype_name):
            return None
        common = dict(head_size=spec.head_dim, neox=spec.convention == "half", params=rope_parameters(spec),
                      positions="positions.reshape(-1, 3).T" if spec.n_axes == 3 else "positions.reshape(-1)")
        if fixed_table_rows(spec) is None:
            return GROWING_TABLE.format(unit=rows_per_max_position(spec), **common)
        served = ""
        if spec.rope_type == "longrope":
            served = (f"\n    # vLLM reads only model_config.max_model_len here: the served length\n"
                      f"    config.model_config = types.SimpleNamespace(max_model_len={served_length(spec)})")
        return FIXED_TABLE.format(served=served, max_position=served_length(spec), dtype=dtype_name, **common)


VLLM = VllmRope()
