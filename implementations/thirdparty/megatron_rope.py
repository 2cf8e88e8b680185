"""NVIDIA Megatron-Core's RoPE: ``RotaryEmbedding``, ``YarnRotaryEmbedding`` and
``MultimodalRotaryEmbedding`` (the tables) with ``apply_rotary_pos_emb`` (the rotation).

Read from megatron-core 0.16.1: ``megatron/core/models/common/embeddings/rotary_pos_embedding.py``
(``RotaryEmbedding``, ``MultimodalRotaryEmbedding``), ``yarn_rotary_pos_embedding.py``
(``YarnRotaryEmbedding``) and ``rope_utils.py`` (``apply_rotary_pos_emb``, unfused path
``_apply_rotary_pos_emb_bshd``). The modules are imported as users import them (this imports
the ``megatron.core`` package, which warns that Transformer Engine and Apex are absent).

What the library computes: ``inv_freq = 1 / base ** (arange(0, dim, 2, float32) / dim)`` with
``dim = int(kv_channels * rotary_percent)`` (float32 on the device). ``forward(max_seq_len,
offset)`` (an ``lru_cache`` of 32 entries on the method) returns ``emb`` [max_seq_len, 1, 1,
dim]: the angles ``outer(arange(max_seq_len, float32) + offset, inv_freq)`` laid out as
``cat(f, f)`` (rotate-half) or ``repeat_interleave(f, 2)`` (``rotary_interleaved``).
``apply_rotary_pos_emb(t, freqs, config, mscale=...)`` (``config.apply_rope_fusion`` False: the
unfused ``_apply_rotary_pos_emb_bshd``) rotates ``t[..., :dim]`` with
``cos_ = (cos(freqs) * mscale).to(t.dtype)`` and ``sin_`` likewise, ``t * cos_ +
_rotate_half(t) * sin_`` in t's dtype, and concatenates ``t[..., dim:]`` back.

Spec -> call (one module and one config per spec, built on first use and kept; the module's own
``lru_cache`` is kept with it):
  * ``head_dim`` -> ``kv_channels``; ``rotary_dim`` -> ``rotary_percent = r / head_dim`` (nudged
    up one ulp where needed so the library's ``int(kv_channels * rotary_percent)`` gives r, as
    :func:`.hf_transformers.partial_rotary_factor` does); partial rotary is native (pairs inside
    the first r channels, exponent denominator r, tail concatenated back).
  * ``base`` -> ``rotary_base``; ``convention`` -> ``rotary_interleaved`` (on the module, which
    lays out the table, and on the config, which ``_rotate_half`` reads).
  * scaling None -> ``RotaryEmbedding``. ``linear`` -> ``seq_len_interpolation_factor = factor``
    (positions multiplied by 1/factor). ``llama3`` -> ``rope_scaling=True``,
    ``rope_scaling_factor = factor``: the library fixes ``low_freq_factor=1``,
    ``high_freq_factor=4`` and ``original_max_position_embeddings=8192`` (``_apply_scaling``'s
    defaults, which the constructor does not expose), so only specs with exactly those values
    (Llama 3.1's) are supported.
  * ``yarn`` -> ``YarnRotaryEmbedding(scaling_factor=factor, original_max_position_embeddings,
    beta_fast, beta_slow, correction_range_round_to_int=truncate)`` (unset keys: the library's
    defaults 32, 1, True are the spec's), as ``GPTModel`` builds it for
    ``position_embedding_type="yarn"``; its ``forward`` returns ``(emb, mscale)`` and the mscale
    goes to ``apply_rotary_pos_emb(mscale=...)``, as ``MultiLatentAttention`` passes it.
    ``mscale``/``mscale_all_dim`` are passed only when both are set (the spec's condition for
    the ratio g(s, mscale) / g(s, mscale_all_dim)); otherwise the library's defaults (1, 0)
    give g(s, 1), the spec's factor. An explicit ``attention_factor`` has no parameter:
    unsupported. Interleaved YaRN: the library asserts it is unsupported, so is it here. Partial
    YaRN is claimed (the constructor takes ``rotary_percent`` and ``GPTModel`` passes it), but
    ``get_emb`` works over ``kv_channels`` and ignores it (:meth:`MegatronRope.deviations`,
    ``yarn-ignores-rotary-percent``).
  * ``ntk``, ``dynamic``, ``longrope``: no such scaling in the library, unsupported.
  * ``MRope`` (chunked sections, Qwen2-VL; three axes) -> ``MultimodalRotaryEmbedding`` with
    ``forward(position_ids [3, b, s], mrope_section)`` (per-row tables [s, b, 1, r], the
    library's own), ``config.mrope_section`` set as ``GPTModel`` requires; scaling None or
    ``linear``. Qwen3-VL's interleaved sections (``MRope.interleaved``) are not in the library:
    unsupported. ``Axial2D``: unsupported. Interleaved pairs with M-RoPE are claimed
    (``rotary_interleaved`` is a constructor option ``GPTModel`` passes), but in 0.16.1 that
    branch of ``MultimodalRotaryEmbedding.forward`` raises RuntimeError (``view`` of a
    non-contiguous stack, sized with ``freqs.shape[0]``, the axis count 3, where the sequence
    length belongs); no named case has interleaved M-RoPE, so only drawn specs can show it.

Positions. ``forward(max_seq_len, offset)`` gives the table of positions offset ..
offset + max_seq_len - 1; per-token positions are looked up in the library's table, as
Megatron's own dynamic-batching inference does (``DynamicInferenceContext.apply_rotary_emb_query``
/ ``apply_rotary_emb_key``: ``query_emb[token_to_pos_ids]``, tokens as the sequence axis with
batch 1). To keep tables small at large positions, the adapter calls ``forward(length,
offset)`` once per run of consecutive distinct positions in the call (a prefill row 0..s-1 is
one call ``forward(s, 0)``, as in training) and gathers each token's row: the rows are the
library's (positions below 2^24 are exact in its float32 ``arange + offset``), the lookup is the
adapter's. x [b, s, h, d] then goes in as t [b*s, 1, h, d] with freqs [b*s, 1, 1, r], one call.
M-RoPE needs no lookup.

What is adapted to run on a CPU, and nothing else: (1) constructors get
``use_cpu_initialization=True``, a real argument; (2) ``RotaryEmbedding.get_emb`` (and
``YarnRotaryEmbedding.get_emb``) move ``inv_freq`` to ``torch.cuda.current_device()`` on every
call that finds it on the CPU, and ``MultimodalRotaryEmbedding.__init__`` builds ``inv_freq``
there unconditionally, which raises on a CPU build of torch: while a library constructor or
``forward`` runs, ``torch.cuda.current_device`` is replaced by a function returning ``"cpu"``
(:func:`cpu_device`, ``unittest.mock.patch.object``), so those moves are no-ops;
(3) ``apply_rotary_pos_emb`` fetches the context-parallel group from ``parallel_state`` (which
asserts it is initialised) unless given one: the adapter passes the WORLD group of a one-rank
gloo process group (:func:`single_rank_group`, initialised once per process if torch.distributed
is not), what a one-device Megatron run has; the bshd path only checks it is not None. The config
is the smallest real ``TransformerConfig`` (one layer, one head of head_dim channels,
``apply_rope_fusion=False``: no Transformer Engine or flash-attn kernels, which a CPU does not have).

Precision: ``inv_freq``, positions and angles are float32 whatever x's dtype; cos/sin are cast
to x's dtype and the rotation runs in x's dtype (bfloat16 cos/sin for bfloat16 x). supports()
claims float64 and the suite reports the float32 angles.

Nothing is supplied: the library computes frequencies, scaling, the M-RoPE sections and the
rotation; the adapter only looks rows up in the library's table.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from unittest import mock

import torch

from rope_suite.conformance.deviations import Deviation, rope_type
from rope_suite.conformance.spec import MRope, RopeSpec

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
EMBEDDINGS = "megatron.core.models.common.embeddings"
WHERE = "megatron/core/models/common/embeddings"
LLAMA3_FIXED = {"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
"""RotaryEmbedding._apply_scaling's constants, which its constructor does not expose."""


@contextmanager
def cpu_device() -> Iterator[None]:
    """Inside: ``torch.cuda.current_device()`` returns "cpu", the device Megatron's rotary
    classes otherwise take from CUDA (their constructors and ``get_emb``)."""
    with mock.patch.object(torch.cuda, "current_device", lambda: "cpu"):
        yield


def single_rank_group() -> Any:
    """The WORLD group of a one-rank gloo process group (initialised here if torch.distributed
    is not yet): the context-parallel group ``apply_rotary_pos_emb`` wants, of size 1."""
    dist = torch.distributed
    if not dist.is_initialized():
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    return dist.group.WORLD


def rotary_percent(head_dim: int, rotary_dim: int) -> float:
    """r / head_dim, the smallest float with ``int(head_dim * percent) == r`` (the library's rounding)."""
    percent = rotary_dim / head_dim
    while int(head_dim * percent) < rotary_dim:
        percent = math.nextafter(percent, math.inf)
    return percent


def token_freqs(rotary: Any, positions: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(freqs [tokens, 1, 1, r], mscale) of the library's table at each of ``positions`` (1D):
    ``rotary(length, offset)`` once per run of consecutive distinct positions, each token's row
    gathered from them. mscale is YaRN's (its forward returns (emb, mscale)), else 1.0."""
    distinct = torch.unique(positions)  # sorted
    cuts = [0, *(torch.nonzero(distinct[1:] - distinct[:-1] != 1).flatten() + 1).tolist(), len(distinct)]
    rows, mscale = [], 1.0
    with cpu_device():
        for start, stop in zip(cuts[:-1], cuts[1:]):
            if stop > start:
                out = rotary(stop - start, int(distinct[start]))
                emb, mscale = out if isinstance(out, tuple) else (out, 1.0)
                rows.append(emb)
    if not rows:  # no tokens: an empty table of the right width
        with cpu_device():
            out = rotary(1, 0)
        emb = out[0] if isinstance(out, tuple) else out
        return emb[:0], mscale
    return torch.cat(rows)[torch.searchsorted(distinct, positions)], mscale


def rotate(apply: Any, rotary: Any, config: Any, group: Any, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [b, s, h, d] at positions [b, s] (or [b, s, 3] for M-RoPE): the library's table and one
    ``apply_rotary_pos_emb`` call in its [seq, batch, heads, dim] layout."""
    b, s, h, d = x.shape
    if positions.dim() == 3:  # MultimodalRotaryEmbedding: position_ids [3, b, s] -> freqs [s, b, 1, r]
        with cpu_device():
            freqs = rotary(positions.permute(2, 0, 1), list(config.mrope_section))
        return apply(x.transpose(0, 1), freqs, config=config, cp_group=group).transpose(0, 1)
    freqs, mscale = token_freqs(rotary, positions.reshape(-1))
    return apply(x.reshape(b * s, 1, h, d), freqs, config=config, mscale=mscale, cp_group=group).reshape(b, s, h, d)


def _partial(record: Mapping[str, Any]) -> bool:
    spec = record.get("spec") or {}
    return spec.get("rotary_dim") is not None and spec.get("rotary_dim") != spec.get("head_dim")


class MegatronRope:
    """Megatron-Core's rotary modules with ``apply_rotary_pos_emb``, as a plug-in object."""

    framework = "torch"
    device = "cpu"

    def __init__(self) -> None:
        self._built: dict[RopeSpec, tuple[Any, Any]] = {}  # spec -> (rotary module, TransformerConfig)
        self.deviations: tuple[Deviation, ...] = (
            Deviation(
                "float32-angles", "precision choice",
                "inv_freq, the positions and the angles are float32 whatever x's dtype, so float64 x gets "
                "float32 angles",
                f"{WHERE}/rotary_pos_embedding.py: RotaryEmbedding.__init__ / get_freqs_non_repeated",
                lambda rec: rec.get("dtype") == "float64" and rec.get("status") == "failed"),
            Deviation(
                "yarn-ignores-rotary-percent", "bug",
                "YarnRotaryEmbedding builds its frequencies, ramp and table over kv_channels (self.dim) and "
                "never reads rotary_percent (only the parent's unused inv_freq does), so with rotary_percent < 1 "
                "the whole head rotates, with frequencies over the whole head",
                f"{WHERE}/yarn_rotary_pos_embedding.py: YarnRotaryEmbedding.__init__ / get_emb",
                lambda rec: rope_type(rec) == "yarn" and _partial(rec) and rec.get("status") == "failed"),
        )

    def __repr__(self) -> str:
        return "MegatronRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES:
            return False
        kind, s = spec.rope_type, spec.scaling
        if isinstance(spec.multi_axis, MRope):
            return not spec.multi_axis.interleaved and spec.multi_axis.n_axes == 3 and kind in ("default", "linear")
        if spec.multi_axis is not None:
            return False
        if kind == "llama3":
            return all(getattr(s, key) == value for key, value in LLAMA3_FIXED.items())
        if kind == "yarn":
            return spec.convention == "half" and s.attention_factor is None
        return kind in ("default", "linear")

    def constructor(self, spec: RopeSpec) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(class name, its keyword arguments, TransformerConfig keyword arguments) for ``spec``."""
        s = spec.scaling
        common = dict(kv_channels=spec.head_dim, rotary_percent=rotary_percent(spec.head_dim, spec.rotary_dim),
                      rotary_interleaved=spec.convention == "interleaved", rotary_base=spec.base)
        if spec.rope_type == "linear":
            common["seq_len_interpolation_factor"] = s.factor
        config = dict(num_layers=1, hidden_size=spec.head_dim, num_attention_heads=1, kv_channels=spec.head_dim,
                      rotary_interleaved=spec.convention == "interleaved", apply_rope_fusion=False)
        if isinstance(spec.multi_axis, MRope):
            return "MultimodalRotaryEmbedding", common, {**config, "mrope_section": list(spec.multi_axis.sections)}
        common["use_cpu_initialization"] = True
        if spec.rope_type == "llama3":
            return "RotaryEmbedding", {**common, "rope_scaling": True, "rope_scaling_factor": s.factor}, config
        if spec.rope_type == "yarn":
            yarn = dict(scaling_factor=s.factor, original_max_position_embeddings=s.original_max_position_embeddings)
            yarn |= {name: value for name, value in (("beta_fast", s.beta_fast), ("beta_slow", s.beta_slow),
                                                     ("correction_range_round_to_int", s.truncate)) if value is not None}
            if s.mscale and s.mscale_all_dim:
                yarn |= {"mscale": s.mscale, "mscale_all_dim": s.mscale_all_dim}
            return "YarnRotaryEmbedding", {**common, **yarn}, config
        return "RotaryEmbedding", common, config

    def built(self, spec: RopeSpec) -> tuple[Any, Any]:
        """(rotary module, TransformerConfig) for ``spec``, built on first use and kept."""
        if spec not in self._built:
            name, kwargs, config = self.constructor(spec)
            with cpu_device():
                rotary = getattr(importlib.import_module(EMBEDDINGS), name)(**kwargs)
            transformer_config = importlib.import_module("megatron.core.transformer.transformer_config")
            self._built[spec] = rotary, transformer_config.TransformerConfig(**config)
        return self._built[spec]

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at ``positions`` [batch, seq] ([batch, seq, 3]
        for M-RoPE)."""
        want = (*x.shape[:2], 3) if isinstance(spec.multi_axis, MRope) else tuple(x.shape[:2])
        if tuple(positions.shape) != want or positions.is_floating_point():
            raise ValueError(f"positions {tuple(positions.shape)} {positions.dtype} is invalid: Megatron takes "
                             f"integer positions of shape {want} for x {tuple(x.shape)}")
        if positions.numel() and int(positions.min()) < 0:
            raise ValueError(f"position {int(positions.min())} is invalid: positions must be >= 0")
        rotary, config = self.built(spec)
        apply = importlib.import_module(f"{EMBEDDINGS}.rope_utils").apply_rotary_pos_emb
        return rotate(apply, rotary, config, single_rank_group(), x, positions)

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Self-contained source of ``make()``: the module and config for ``spec`` built once,
        and ``rope(x, positions)`` calling them as :meth:`rope` does."""
        if not self.supports(spec, dtype_name):
            return None
        name, kwargs, config = self.constructor(spec)
        module = "yarn_rotary_pos_embedding" if name == "YarnRotaryEmbedding" else "rotary_pos_embedding"
        return "\n\n".join([
            "from __future__ import annotations\n\nfrom contextlib import contextmanager\nfrom unittest import mock\n\n"
            f"import torch\nfrom {EMBEDDINGS}.rope_utils import apply_rotary_pos_emb\n"
            f"from {EMBEDDINGS}.{module} import {name}\n"
            "from megatron.core.transformer.transformer_config import TransformerConfig",
            *(inspect.getsource(f) for f in (cpu_device, single_rank_group, token_freqs, rotate)),
            f"def make():\n    with cpu_device():  # the library picks torch.cuda.current_device()\n"
            f"        rotary = {name}(**{kwargs!r})\n"
            f"    config = TransformerConfig(**{config!r})\n    group = single_rank_group()\n\n"
            f"    def rope(x, positions):\n        return rotate(apply_rotary_pos_emb, rotary, config, group, x, positions)"
            f"\n\n    return rope\n"])


MEGATRON = MegatronRope()
