"""ggml's RoPE operator (llama.cpp's tensor library) on the CPU, through ggml-python's ctypes bindings.

Read from ggml-python 0.0.45, which builds the ggml it vendors (``vendor/ggml``) into
``libggml.so`` / ``libggml-cpu.so`` and exposes the C API one to one (``ggml/ggml.py``). The
operator is ``ggml_rope_ext`` (one position stream) or ``ggml_rope_multi`` (M-RoPE, vision),
declared in ``ggml/include/ggml.h``, built in ``ggml/src/ggml.c: ggml_rope_impl`` and computed
by ``ggml/src/ggml-cpu/ops.cpp: ggml_compute_forward_rope_flt`` (angles in
``ggml_rope_cache_init`` / ``ggml_mrope_cache_init``, YaRN in ``rope_yarn``, the rotation in
``rotate_pairs``).

What a ggml user does, and what the adapter does on every call: ``ggml_init`` a context sized
for the call, ``ggml_new_tensor_3d`` for x, ``ggml_new_tensor_1d`` (int32) for the positions
(and float32 for ``freq_factors`` when used), the rope node, ``ggml_new_graph`` +
``ggml_build_forward_expand``, ``ggml_graph_compute_with_ctx`` with one thread, copy the result
out, ``ggml_free``. Nothing is kept between calls. :func:`ggml_rope` is that code; the
reproduction scripts contain it verbatim.

Layout. x [batch, seq, heads, head_dim] goes in as ggml's ``ne = [head_dim, heads, batch*seq]``
(llama.cpp's ``[n_embd_head, n_head, n_tokens]``): ggml's operator takes one position per
token along ``ne[2]`` (``pos[i2]``) shared by everything at that index of ``ne[3]``, so a
batch whose rows have their own positions is, as in llama.cpp's ubatch, the tokens of all rows
laid end to end, each with its own position. No copy is needed (x is contiguous).

Spec -> call (``ggml_rope_ext(ctx, x, pos, freq_factors, n_dims, mode, n_ctx_orig, freq_base,
freq_scale, ext_factor, attn_factor, beta_fast, beta_slow)``):
  * ``rotary_dim`` -> ``n_dims``: ggml rotates the first n_dims channels and copies the rest
    (the tail loop in ``ggml_compute_forward_rope_flt``). ``base`` -> ``freq_base``.
  * ``convention`` "interleaved" -> mode ``GGML_ROPE_TYPE_NORMAL`` (0, pairs (2i, 2i+1));
    "half" -> ``GGML_ROPE_TYPE_NEOX`` (2, pairs (i, i + n_dims/2)).
  * no scaling -> ``freq_scale = 1, ext_factor = 0, attn_factor = 1`` (llama.cpp's defaults).
  * ``linear`` -> ``freq_scale = 1/factor`` (llama.cpp's ``rope_freq_scale``), ext_factor 0.
  * ``yarn`` -> ``freq_scale = 1/factor, ext_factor = 1, n_ctx_orig = L0, beta_fast, beta_slow``
    (32 and 1 by default, HF's): ggml computes the correction range
    (``ggml.c: ggml_rope_yarn_corr_dims``, always floor/ceil), the ramp and the magnitude
    ``attn_factor * (1 + 0.1 ln(factor))`` itself (``ops.cpp: rope_yarn``). With
    ``attn_factor = 1`` that is YaRN's default g(s). With DeepSeek's ``mscale`` and
    ``mscale_all_dim`` (or an explicit ``attention_factor``) the factor wanted is another
    number A, and llama.cpp passes ``attn_factor = A / g(s)`` to cancel ggml's own g(s)
    (``llama-context.cpp``, the YaRN attention-factor block); the adapter does the same, so
    for those specs the attention factor is the adapter's (``supplied`` says so; no column of
    the table rests on it). ``truncate: false`` has no ggml parameter (the range is always
    rounded): unsupported.
  * ``ntk`` and ``dynamic``: no ggml parameter (llama.cpp has neither; a user would have to
    compute the base): unsupported.
  * ``llama3`` and ``longrope``: ggml takes them only as ``freq_factors`` (per-pair divisors
    of the frequencies) that the caller computes, so they are the separate object
    :data:`GGML_FREQ_FACTORS`, whose ``supplied`` says that the scaling is the adapter's.
  * ``MRope`` (chunked, Qwen2-VL) -> ``ggml_rope_multi``, mode ``GGML_ROPE_TYPE_MROPE`` (8),
    ``sections = (s_t, s_h, s_w, 0)`` (a fourth section takes the spec's fourth stream), and
    positions as llama.cpp lays them out: all tokens' t, then h, then w, then a fourth stream
    (``llama-graph.cpp: llm_graph_input_pos::set_input``: "4th dim is 0" for text), i.e. the
    spec's fourth axis when it has one, else zeros.
  * ``MRope(interleaved=True)`` (Qwen3-VL) -> mode ``GGML_ROPE_TYPE_IMROPE`` (40), the same
    sections and positions.
  * ``Axial2D`` -> ``ggml_rope_multi`` mode ``GGML_ROPE_TYPE_VISION`` (24) as llama.cpp's
    vision encoders call it (``tools/mtmd/clip.cpp``, Qwen2-VL): ``n_dims = head_dim/2``,
    ``sections = (head_dim/4, head_dim/4, 0, 0)``, positions x then y (then zeros): pairs
    (i, i + head_dim/2), the first head_dim/4 with x, the rest with y, each section's
    frequencies restarting at base^0 (``indep_sects``), i.e. base^(-2j/(r/2)), j < r/4: the
    spec's axial frequencies. ggml asserts ``n_dims == ne0/2`` for vision, so partial rotary
    with 2D positions is unsupported.
  * Multi-axis specs with ``convention`` "interleaved" (SAM 2): the multi-axis modes only pair
    rotate-half, so the first r channels go through the exact gather llama.cpp's converter
    applies to q/k weights between the two layouts (``convert_hf_to_gguf.py``: ``permute``),
    2i -> i and 2i + 1 -> i + r/2, and back after: a bit-exact channel move, no arithmetic.
  * ``rope_qk``: q and k as two rope nodes of one graph sharing the positions tensor, as in
    llama.cpp's attention (``Qcur``, ``Kcur``); their head counts may differ.

Dtypes: float32 and float16 (``GGML_TYPE_F16``; ggml converts each element to float32,
rotates with its float32 cos/sin and rounds once). ggml's rope kernel aborts the process
(``GGML_ABORT("fatal error")`` in ``ggml_compute_forward_rope``) for every other type, so
float64 and bfloat16 are unsupported. Angles are float32: ``theta = p`` then ``theta *=
theta_scale`` once per pair (``theta_scale = powf(freq_base, -2/n_dims)``), a running product.

Positions go in as int32 (``GGML_TYPE_I32``, asserted in ``ggml_rope_impl``): ``max_position``
is 2^31 - 1.
"""

from __future__ import annotations

import ctypes
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rope_suite.conformance.deviations import Deviation, axis_kind
from rope_suite.conformance.spec import Axial2D, MRope, RopeSpec

DTYPES: tuple[str, ...] = ("float32", "float16")
NORMAL, NEOX, MROPE, VISION, IMROPE = 0, 2, 8, 24, 40  # ggml.h GGML_ROPE_TYPE_*
WHERE = "ggml/src/ggml-cpu/ops.cpp"


# --- the ggml calls (copied verbatim into the reproduction scripts: no rope_suite names) ----------

def interleaved_to_half(head_dim: int, rotary_dim: int) -> np.ndarray:
    """Indices [head_dim]: x[..., order] moves interleaved pairs (2i, 2i + 1) to (i, i + r/2)."""
    return np.concatenate([np.arange(0, rotary_dim, 2), np.arange(1, rotary_dim, 2), np.arange(rotary_dim, head_dim)])


def ggml_rope(xs: Sequence[np.ndarray], positions: np.ndarray, call: Mapping[str, Any],
              freq_factors: np.ndarray | None = None) -> list[np.ndarray]:
    """Each x [batch, seq, heads, head_dim] (float32 or float16) rotated by one ggml rope node of
    one graph, at positions [batch, seq] or [batch, seq, n_axes]; ``call`` holds the operator's
    arguments (op "ext" or "multi", n_dims, mode, sections, n_ctx_orig, freq_base, freq_scale,
    ext_factor, attn_factor, beta_fast, beta_slow) and ``gather`` (interleaved pairs moved to
    rotate-half around a multi-axis call)."""
    import ggml
    import ggml.utils

    batch, seq = positions.shape[:2]
    n_tokens = batch * seq
    order = None
    if call["gather"]:
        order = interleaved_to_half(xs[0].shape[-1], call["gather"])
        xs = [x[..., order] for x in xs]
    if call["op"] == "multi":  # llama.cpp's layout: every token's stream 0, then 1, 2, 3 (absent: 0)
        streams = positions.reshape(n_tokens, -1).T
        pos = np.zeros((4, n_tokens), dtype=np.int32)
        pos[:len(streams)] = streams
    else:
        pos = positions.reshape(n_tokens)
    pos = np.ascontiguousarray(pos.reshape(-1), dtype=np.int32)
    tokens = [np.ascontiguousarray(x.reshape(n_tokens, x.shape[2], x.shape[3])) for x in xs]
    size = (sum(2 * t.nbytes for t in tokens) + pos.nbytes + 4 * xs[0].shape[-1] * 64
            + 16 * ggml.ggml_tensor_overhead() + ggml.ggml_graph_overhead() + (1 << 20))
    ctx = ggml.ggml_init(ggml.ggml_init_params(mem_size=size, mem_buffer=None))
    try:
        pos_t = ggml.utils.from_numpy(pos, ctx)
        ff_t = None if freq_factors is None else ggml.utils.from_numpy(np.asarray(freq_factors, dtype=np.float32), ctx)
        graph = ggml.ggml_new_graph(ctx)
        outs = []
        for t in tokens:
            a = ggml.utils.from_numpy(t, ctx)  # ne = [head_dim, heads, n_tokens]
            args = (call["n_ctx_orig"], call["freq_base"], call["freq_scale"], call["ext_factor"],
                    call["attn_factor"], call["beta_fast"], call["beta_slow"])
            if call["op"] == "multi":
                sections = (ctypes.c_int * 4)(*call["sections"])
                out = ggml.ggml_rope_multi(ctx, a, pos_t, ff_t, call["n_dims"], sections, call["mode"], *args)
            else:
                out = ggml.ggml_rope_ext(ctx, a, pos_t, ff_t, call["n_dims"], call["mode"], *args)
            ggml.ggml_build_forward_expand(graph, out)
            outs.append(out)
        ggml.ggml_graph_compute_with_ctx(ctx, graph, 1)
        ys = [ggml.utils.to_numpy(out).copy().reshape(x.shape) for out, x in zip(outs, xs)]
    finally:
        ggml.ggml_free(ctx)
    if order is not None:
        inverse = np.argsort(order)
        ys = [y[..., inverse] for y in ys]
    return ys


def llama3_freq_factors(rotary_dim: int, base: float, factor: float, low_freq_factor: float,
                        high_freq_factor: float, original_max_position_embeddings: int) -> np.ndarray:
    """llama.cpp's ``rope_freqs`` tensor for Llama 3.1 scaling (``convert_hf_to_gguf.py``,
    ``LlamaModel.generate_extra_tensors``): per pair 1 (short wavelengths), factor (long), else
    1 / ((1 - smooth) / factor + smooth); ggml divides each frequency by it."""
    freqs = 1.0 / (base ** (np.arange(0, rotary_dim, 2, dtype=np.float64) / rotary_dim))
    low_wavelen = original_max_position_embeddings / low_freq_factor
    high_wavelen = original_max_position_embeddings / high_freq_factor
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (original_max_position_embeddings / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def longrope_freq_factors(positions: np.ndarray, short_factor: Sequence[float], long_factor: Sequence[float],
                          original_max_position_embeddings: int) -> np.ndarray:
    """llama.cpp's ``rope_factors_long`` when the call's length max(position) + 1 exceeds the
    original length, else ``rope_factors_short`` (``llama-model.cpp: get_rope_factors`` picks by
    the context length; here the context is the call's)."""
    seq_len = int(positions.max()) + 1 if positions.size else 1
    chosen = long_factor if seq_len > original_max_position_embeddings else short_factor
    return np.asarray(chosen, dtype=np.float32)


# --- spec -> call -----------------------------------------------------------------------------

def yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    """llama.cpp's ``get_mscale`` (``llama-context.cpp``): 0.1 mscale ln(scale) + 1, 1 for scale <= 1."""
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def rope_call(spec: RopeSpec) -> dict[str, Any]:
    """The arguments of the ggml rope call for ``spec`` (module docstring, "Spec -> call")."""
    s, axis = spec.scaling, spec.multi_axis
    call: dict[str, Any] = dict(op="ext", n_dims=spec.rotary_dim, mode=NEOX if spec.convention == "half" else NORMAL,
                                sections=(0, 0, 0, 0), n_ctx_orig=0, freq_base=spec.base, freq_scale=1.0,
                                ext_factor=0.0, attn_factor=1.0, beta_fast=32.0, beta_slow=1.0, gather=0)
    if isinstance(axis, MRope):
        call.update(op="multi", mode=IMROPE if axis.interleaved else MROPE,
                    sections=tuple(axis.sections) + (0,) * (4 - len(axis.sections)))
    elif isinstance(axis, Axial2D):
        quarter = spec.head_dim // 4
        call.update(op="multi", mode=VISION, n_dims=spec.head_dim // 2, sections=(quarter, quarter, 0, 0))
    if axis is not None and spec.convention == "interleaved":
        call.update(gather=spec.rotary_dim)
    if spec.rope_type == "linear":
        call.update(freq_scale=1.0 / s.factor)
    elif spec.rope_type == "yarn":
        call.update(freq_scale=1.0 / s.factor, ext_factor=1.0, n_ctx_orig=s.original_max_position_embeddings,
                    beta_fast=32.0 if s.beta_fast is None else s.beta_fast,
                    beta_slow=1.0 if s.beta_slow is None else s.beta_slow)
        wanted = yarn_attention_factor(spec)
        if wanted is not None:  # llama.cpp cancels ggml's own g(s) with attn_factor
            call.update(attn_factor=wanted / yarn_mscale(s.factor))
    elif spec.rope_type == "longrope":
        call.update(attn_factor=longrope_attention_factor(spec))
    return call


def yarn_attention_factor(spec: RopeSpec) -> float | None:
    """The YaRN attention factor when it is not ggml's own g(s): an explicit attention_factor,
    or g(s, mscale) / g(s, mscale_all_dim) with both set (DeepSeek); None otherwise."""
    s = spec.scaling
    if s.attention_factor is not None:
        return s.attention_factor
    if s.mscale and s.mscale_all_dim:
        return yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim)
    return None


def longrope_attention_factor(spec: RopeSpec) -> float:
    """llama.cpp's ``rope.scaling.attn_factor`` for LongRoPE (``convert_hf_to_gguf.py``, Phi-3):
    sqrt(1 + ln s / ln L0), 1 when s <= 1; an explicit attention_factor as given."""
    s = spec.scaling
    if s.attention_factor is not None:
        return s.attention_factor
    if s.factor <= 1:
        return 1.0
    return math.sqrt(1 + math.log(s.factor) / math.log(s.original_max_position_embeddings))


def _imrope_pairs_on_fourth_stream(record: Mapping[str, Any]) -> bool:
    """A failing interleaved M-RoPE case whose sections leave a pair i outside them (i >= 3
    sections[i % 3]), the pairs ggml turns with the fourth stream."""
    spec = record.get("spec") or {}
    multi = spec.get("multi_axis") or {}
    if axis_kind(record) != "mrope" or not multi.get("interleaved") or record.get("status") != "failed":
        return False
    sections = multi.get("sections") or ()
    return len(sections) == 3 and any(i >= 3 * sections[i % 3] for i in range(spec.get("rotary_dim", 0) // 2))


def _within_running_product_error(record: Mapping[str, Any]) -> bool:
    """A failing case whose worst element is off by no more than the running product of the angles
    explains: after n = r/2 float32 multiplications (and theta_scale's own rounding, raised to the
    n-th power) an angle's relative error is up to about 2 n u, where standard practice's is 2 u and
    the allowed error 4 times that: so at most r/8 times the allowed error (at least 2)."""
    found = record.get("mismatch") or {}
    spec = record.get("spec") or {}
    error, bound = found.get("error"), found.get("bound")
    if record.get("status") != "failed" or not isinstance(error, (int, float)) or not bound:
        return False
    return error <= max(2.0, spec.get("rotary_dim", 0) / 8) * bound


IMROPE_FOURTH_STREAM = Deviation(
    "imrope-fourth-stream", "different semantics",
    "Interleaved M-RoPE (GGML_ROPE_TYPE_IMROPE, Qwen3-VL) turns every pair outside the three interleaved "
    "sections (i % 3 == k with i >= 3 sections[k]) with a fourth position stream, which llama.cpp sets to 0 "
    "for text tokens, where HF's apply_interleaved_mrope turns them with the temporal stream: for Qwen3-VL "
    "(sections 24, 20, 20) pairs 61 and 62 are not rotated at all (error 0.0024 at position 3688, 1270 times "
    "the allowed error; 0.31 on a drawn spec with sections (0, 0, 1)).",
    f"{WHERE}: ggml_mrope_cache_init (is_imrope branch: theta = theta_e); llama.cpp src/llama-graph.cpp: "
    "llm_graph_input_pos::set_input (4th dim is 0)",
    _imrope_pairs_on_fourth_stream)
RUNNING_PRODUCT_ANGLES = Deviation(
    "running-product-angles", "precision choice",
    "Each pair's angle is a running float32 product (theta = p, then theta *= theta_scale per pair, with "
    "theta_scale = powf(freq_base, -2/n_dims) rounded once), so its relative error grows with the pair "
    "index: 2.4e-6 at pair 63 of a 128-channel head (about 40 float32 roundings) where standard practice, "
    "float32 theta_i times p, has 1.2e-7; errors reach 1.04 to 4.7 times the allowed error from positions "
    "of a few thousand.",
    f"{WHERE}: ggml_rope_cache_init and ggml_mrope_cache_init (theta *= theta_scale), "
    "ggml_compute_forward_rope_flt (theta_scale)",
    _within_running_product_error)


class GgmlRope:
    """ggml's rope operator for the scalings ggml computes itself (the module docstring)."""

    framework = "numpy"
    device = "cpu"
    max_position = (1 << 31) - 1
    supplied: dict[str, str] = {
        "attention_factor": "the adapter for YaRN with mscale/mscale_all_dim or attention_factor keys "
                            "(attn_factor = A / g(s), as llama.cpp's llama_context passes it)"}
    deviations: tuple[Deviation, ...] = (IMROPE_FOURTH_STREAM, RUNNING_PRODUCT_ANGLES)

    def __repr__(self) -> str:
        return "GgmlRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        """float32 and float16 only (ggml's rope aborts the process on any other type); default,
        linear and yarn scaling (yarn with ``truncate`` unset or true: ggml always rounds the
        correction range); 2D axial only over the whole head (ggml's vision mode asserts
        n_dims == ne0/2); M-RoPE with at most 4 sections and one of the first three non-zero
        (``ggml_compute_forward_rope_flt`` asserts it)."""
        if dtype_name not in DTYPES:
            return False
        if spec.rope_type not in ("default", "linear", "yarn"):
            return False
        if spec.rope_type == "yarn" and spec.scaling.truncate is False:
            return False
        return _axes_supported(spec)

    def call(self, spec: RopeSpec) -> dict[str, Any]:
        return rope_call(spec)

    def freq_factors(self, positions: np.ndarray, spec: RopeSpec) -> np.ndarray | None:
        return None

    def rope_qk(self, q: np.ndarray, k: np.ndarray, positions: np.ndarray, spec: RopeSpec
                ) -> tuple[np.ndarray, np.ndarray]:
        """q, k [batch, seq, heads, head_dim] (their own head counts): two rope nodes of one graph."""
        positions = np.asarray(positions)
        q_out, k_out = ggml_rope([q, k], positions, self.call(spec), self.freq_factors(positions, spec))
        return q_out, k_out

    def rope(self, x: np.ndarray, positions: np.ndarray, spec: RopeSpec) -> np.ndarray:
        """x [batch, seq, heads, head_dim] (float32 or float16) at positions [batch, seq] or
        [batch, seq, n_axes]."""
        positions = np.asarray(positions)
        return ggml_rope([x], positions, self.call(spec), self.freq_factors(positions, spec))[0]

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Self-contained source of ``make()`` returning ``rope(x, positions)`` on numpy arrays:
        :func:`ggml_rope` verbatim and this spec's call (and freq_factors) written in."""
        if not self.supports(spec, dtype_name):
            return None
        return _source(self.call(spec), self._factors_source(spec))

    def _factors_source(self, spec: RopeSpec) -> tuple[list[Any], str]:
        return [], "None"


class GgmlFreqFactorsRope(GgmlRope):
    """ggml's rope operator fed ``freq_factors`` the adapter computes as llama.cpp's converter
    does: Llama 3.1 scaling (``rope_freqs``) and LongRoPE (``rope_factors_long`` /
    ``rope_factors_short``, with LongRoPE's attention factor as ``attn_factor``). ggml divides
    each frequency by its factor (``ggml_rope_cache_init``: ``theta/ff``) and scales cos/sin by
    attn_factor; which factor each pair gets is the adapter's, so ``supplied`` says the scaling
    is not ggml's."""

    supplied: dict[str, str] = {
        "scaling": "the adapter (freq_factors as llama.cpp's convert_hf_to_gguf.py writes them: llama3 rope_freqs, "
                   "longrope's long/short factors picked by the call's length)",
        "attention_factor": "the adapter (LongRoPE's sqrt(1 + ln s / ln L0), convert_hf_to_gguf.py's attn_factor)"}
    deviations: tuple[Deviation, ...] = (RUNNING_PRODUCT_ANGLES,)

    def __repr__(self) -> str:
        return "GgmlFreqFactorsRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        """float32 and float16 (as :class:`GgmlRope`); llama3 and longrope scaling only (every other
        type is :data:`GGML`'s); the multi-axis limits of :class:`GgmlRope`."""
        return dtype_name in DTYPES and spec.rope_type in ("llama3", "longrope") and _axes_supported(spec)

    def freq_factors(self, positions: np.ndarray, spec: RopeSpec) -> np.ndarray | None:
        s = spec.scaling
        if spec.rope_type == "llama3":
            return llama3_freq_factors(spec.rotary_dim, spec.base, s.factor, s.low_freq_factor, s.high_freq_factor,
                                       s.original_max_position_embeddings)
        return longrope_freq_factors(positions, s.short_factor, s.long_factor, s.original_max_position_embeddings)

    def _factors_source(self, spec: RopeSpec) -> tuple[list[Any], str]:
        s = spec.scaling
        if spec.rope_type == "llama3":
            return [llama3_freq_factors], (
                f"llama3_freq_factors({spec.rotary_dim}, {spec.base!r}, {s.factor!r}, {s.low_freq_factor!r}, "
                f"{s.high_freq_factor!r}, {s.original_max_position_embeddings!r})")
        return [longrope_freq_factors], (
            f"longrope_freq_factors(positions, {list(s.short_factor)!r}, {list(s.long_factor)!r}, "
            f"{s.original_max_position_embeddings!r})")


def _axes_supported(spec: RopeSpec) -> bool:
    axis = spec.multi_axis
    if isinstance(axis, Axial2D):
        return spec.rotary_dim == spec.head_dim
    if isinstance(axis, MRope):
        return len(axis.sections) <= 4 and sum(axis.sections[:3]) > 0
    return True


def _source(call: dict[str, Any], factors: tuple[list[Any], str]) -> str:
    helpers, expression = factors
    return "\n\n".join([
        "from __future__ import annotations\n\nimport ctypes\nimport math\nfrom collections.abc import Mapping, "
        "Sequence\nfrom typing import Any\n\nimport numpy as np",
        *(inspect.getsource(f) for f in [interleaved_to_half, ggml_rope, *helpers]),
        f"CALL = {call!r}  # the ggml rope call's arguments\n\n\n"
        f"def make():\n    def rope(x, positions):\n        positions = np.asarray(positions)\n"
        f"        return ggml_rope([x], positions, CALL, {expression})[0]\n\n    return rope\n"])


GGML = GgmlRope()
GGML_FREQ_FACTORS = GgmlFreqFactorsRope()
