"""RoPE in TensorFlow under ``tf.function(jit_compile=True)``: the first-party TF implementation.

The frequency vector, the attention factor and the pair-to-axis map are computed eagerly in
TensorFlow (``tf.experimental.numpy``) by :mod:`rope_suite.implementations.frequencies`,
outside the compiled code, the way real libraries build their ``inv_freq`` buffer once; two
XLA-compiled functions do the rest: ``_cos_sin`` (angles, cos/sin, [batch, seq, r/2]) and
``_rotate`` (the rotation and the pass-through tail). Those numbers are tensor arguments and
only the static facts (convention, rotary_dim, head_dim) are bound in Python, so specs that
differ only in numbers share one trace, and input signatures with unknown batch, seq and
heads let new shapes reuse it (XLA still compiles per concrete shape).

The rotation slices the pair axis (a = v[..., 0], b = v[..., 1]) and concatenates
a cos - b sin and b cos + a sin back: XLA CPU emits one vectorised loop per half, where the
earlier ``v * cos + reverse(v) * (-sin, sin)`` ran scalar (non-affine indices over the flattened
channels). Its gradient is a ``tf.custom_gradient``: the same compiled rotation by -phi
(R(phi)^T = R(-phi)), recorded inside a graph function that calls the compiled cos/sin and the
compiled rotation (_graph_rope), so that a call is one eager dispatch and the tape records one
function (the gradient graph of the forward, or the tape recording the compiled call itself, was
~4x and ~10x slower). One core, fraction of
tf.raw_ops.DeepCopy at [1, 2048, 32, 128]: bf16 forward 13% -> 28%, fwd+bwd 3% -> 32%, f32 fwd+bwd
20% -> 78%. The cos/sin pass: XLA CPU lowers tf.cos/tf.sin on float32 to libm's scalar cosf/sinf
(~2 ms for 131072 angles against a ~3 ms bf16 copy, see jax_rope), so float32 angles go through
_sincos_f32 (Cody-Waite reduction, Cephes polynomials; vectorised, max error 1.3e-7 against float64
up to |phi| 2^20): the compiled cos/sin call at seq 2048 3.0 -> 0.75 ms, bf16 forward 22% -> 25%,
prefill-8192 bf16 29% -> 39%; float64 angles keep tf.cos/tf.sin.
Calls whose positions hold fewer distinct values than tokens (SAM 2: 64 values, 16384 tokens) take
cos/sin from a table of those values and a row gather, two XLA clusters, bit-identical (eager calls
only: one host read of min/max); SAM 2 f32 8% -> 32%, fwd+bwd 13% -> 38%, bf16 3% -> 11%; 16-bit
interleaved rotation at full width (x cos2 + swap_pairs(x) sin2) as in jax_rope.

Precision (torchtune, Meta, flash-attn): for float32/float16/bfloat16 inputs the angles
(positions cast to float32 times float32 inv_freq), cos/sin and the rotation are float32 and
the result is cast back to x's dtype; float64 inputs compute in float64. The frequencies
themselves are computed in float64 and rounded once to the compute dtype (a float32 ``pow``
lands several ulp off, more than the accuracy model leaves room for at long positions).

The frequencies are cached per (spec, sequence length, compute dtype), a pure function of
those: dynamic NTK and LongRoPE read max(position)+1 from the concrete positions on every
call, so no state carries from one call to the next (stale state is HF 25306, vLLM 3488).
Channels past rotary_dim are sliced out of x and concatenated back untouched (bit-identical).

On import: ``TF_CPP_MIN_LOG_LEVEL`` is set to 2 when unset (it quiets TF's C++ logging once
the runtime is up; TF 2.21 still prints a few absl lines while its libraries load), and any
GPU gets memory growth instead of TF's default grab of the whole device.
"""

from __future__ import annotations

import functools
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TF's C++ runtime loads

import tensorflow as tf  # noqa: E402
import tensorflow.experimental.numpy as tnp  # noqa: E402

from rope_suite.conformance.spec import RopeSpec  # noqa: E402

from . import frequencies  # noqa: E402
from .sincos_f32 import COS, PIO2, SIN, TWO_OVER_PI  # noqa: E402


def _no_gpu_memory_grab() -> None:
    """Memory growth on every GPU (TF otherwise reserves the whole device at first use)."""
    try:
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # the GPUs were initialised already by someone else: leave them be
        pass


_no_gpu_memory_grab()

_DTYPES = ("float64", "float32", "float16", "bfloat16")


def _compute_dtype(dtype: tf.DType) -> tf.DType:
    return tf.float64 if dtype == tf.float64 else tf.float32


@tf.autograph.experimental.do_not_convert  # host code, also when a caller wraps rope in tf.function
def _frequency_arguments(spec: RopeSpec, positions: tf.Tensor, compute: tf.DType) -> tuple[tf.Tensor, ...]:
    """(inv_freq, attention factor, pair axes) for one call, computed outside the compiled code.

    Sequence-dependent specs read max(position)+1 from the concrete positions here (a
    negative position is a ValueError); everything else does not touch the positions' values.
    """
    seq_len = frequencies.sequence_length(tnp, positions) if spec.sequence_dependent else None
    return _frequency_constants(spec, seq_len, compute)


@functools.lru_cache(maxsize=64)
def _frequency_constants(spec: RopeSpec, seq_len: int | None, compute: tf.DType) -> tuple[tf.Tensor, ...]:
    """inv_freq [r/2] computed in float64 and rounded once to ``compute``, the attention factor
    [] in ``compute``, the pair axes [r/2] int32. Cached: eager tensors are immutable (built
    eagerly even inside a caller's tf.function trace, whose graph tensors could not be reused)."""
    with tf.init_scope():
        inv_freq = tf.cast(frequencies.inverse_frequencies(tnp, spec, seq_len, tnp.float64), compute)
        scale = tf.constant(frequencies.attention_factor(spec), dtype=compute)
        return inv_freq, scale, frequencies.pair_axes(tnp, spec, tnp.int32)


def _check_shapes(x: tf.Tensor, positions: tf.Tensor, spec: RopeSpec) -> None:
    """ValueError for x not [batch, seq, heads, head_dim] or positions not matching it."""
    if x.shape.rank != 4 or x.shape[-1] != spec.head_dim:
        raise ValueError(f"x.shape={tuple(x.shape)} is invalid: expected [batch, seq, heads, head_dim={spec.head_dim}]")
    if not positions.dtype.is_integer:
        raise ValueError(f"positions.dtype={positions.dtype.name} is invalid: "
                         "positions must be integers (int32 or int64)")
    want = (x.shape[0], x.shape[1]) + (() if spec.n_axes == 1 else (spec.n_axes,))
    if tuple(positions.shape) != want:
        raise ValueError(f"positions.shape={tuple(positions.shape)} is invalid: this spec and x need {want}")


def _sincos_f32(phi: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(cos phi, sin phi) for float32 phi in plain arithmetic that XLA CPU vectorises (jax_rope's
    _sincos_f32, the same formulation and constants).

    Why: XLA CPU lowers float32 cos/sin to scalar libm cosf/sinf calls (~9 ns per value, ~2 ms for
    the 131072 angles of seq 2048). How: k = round(phi 2/pi), Cody-Waite reduction r = phi - k pi/2
    with pi/2 in five float32 parts (sincos_f32.PIO2), Cephes' minimax polynomials for sin and cos on
    [-pi/4, pi/4], and the quadrant k mod 4 picks and signs them. Contract: absolute error against
    float64 sin/cos of the same float32 phi <= ~1.4e-7 for |phi| <= 2^20 (libm: ~6e-8; the accuracy
    model allows 4 x (2 u |phi| + 2 u)); beyond ~8e5 the reduction rounds and the error grows with
    |phi|, still far inside that bound; at any finite phi (precision-horizon probes reach 2^30) the
    results stay in [-1, 1].
    """
    k = tf.round(phi * tf.constant(TWO_OVER_PI, tf.float32))  # half to even
    r = phi
    for part in PIO2:
        r = r - k * tf.constant(part, tf.float32)
    # |r| < 0.88 up to |phi| 2^20 (k comes from a rounded float32 product); past ~2^21 the products
    # round by up to radians (float32 phi is itself off by that much there): clipped, so that
    # |cos|, |sin| <= 1 and finite at any phi
    r = tf.clip_by_value(r, -1.0, 1.0)
    z = r * r
    s3, s2, s1 = (tf.constant(c, tf.float32) for c in SIN)
    c3, c2, c1 = (tf.constant(c, tf.float32) for c in COS)
    sin_r = ((s3 * z + s2) * z + s1) * z * r + r
    cos_r = ((c3 * z + c2) * z + c1) * z * z - 0.5 * z + 1.0
    quadrant = tf.cast(k, tf.int32)  # two's complement: & 3 is k mod 4 for negative k too
    odd = tf.equal(tf.bitwise.bitwise_and(quadrant, 1), 1)
    sin = tf.where(odd, cos_r, sin_r)
    cos = tf.where(odd, sin_r, cos_r)
    sin = tf.where(tf.not_equal(tf.bitwise.bitwise_and(quadrant, 2), 0), -sin, sin)  # quadrants 2, 3
    cos = tf.where(tf.not_equal(tf.bitwise.bitwise_and(quadrant + 1, 2), 0), -cos, cos)  # quadrants 1, 2
    return cos, sin


def _cos_sin_of(phi: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(cos phi, sin phi): _sincos_f32 for float32, tf.cos/tf.sin (float64-accurate) otherwise."""
    if phi.dtype == tf.float32:
        return _sincos_f32(phi)
    return tf.cos(phi), tf.sin(phi)


def _cos_sin(positions: tf.Tensor, inv_freq: tf.Tensor, scale: tf.Tensor, axes: tf.Tensor
             ) -> tuple[tf.Tensor, tf.Tensor]:
    """(a cos phi, a sin phi), each [batch, seq, r/2] in inv_freq's dtype (the compute dtype).

    phi[b, s, i] = positions[b, s, axes[i]] * inv_freq[i]: positions are cast to the compute
    dtype before the multiply (float32 holds every integer up to 2^24 exactly).
    """
    streams = positions if positions.shape.rank == 3 else positions[..., None]  # [batch, seq, n_axes]
    phi = tf.cast(tf.gather(streams, axes, axis=-1), inv_freq.dtype) * inv_freq
    cos, sin = _cos_sin_of(phi)
    return cos * scale, sin * scale


def _rotate(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, *, convention: str, rotary_dim: int,
            head_dim: int, inverse: bool = False) -> tf.Tensor:
    """Rotate the first rotary_dim channels of x by (cos, sin) [batch, seq, r/2] in their dtype
    (by -phi when ``inverse``: R(phi)^T = R(-phi), the backward), cast back to x's dtype once;
    channels past rotary_dim are concatenated back untouched.

    The pairs are viewed as an axis of two, [..., 2, r/2] for "half" and [..., r/2, 2] for
    "interleaved"; a = v[..., 0], b = v[..., 1] are plain slices and the two results
    a cos - b sin and b cos + a sin are concatenated back along that axis.
    """
    half = rotary_dim // 2
    leading = tf.shape(x)[:-1]
    if convention == "interleaved" and x.dtype.size == 2:
        # float16/bfloat16: at full width, x cos2 + partner(x) sin2 (cos2 = c0 c0 c1 c1 ..., sin2 =
        # -s0 s0 -s1 s1 ..., partner swaps each pair): the same products and sums, so the same values;
        # the concatenate along an axis of two runs scalar on 16-bit types (bf16 SAM 2 kernel ~3x slower)
        if inverse:
            sin = -sin
        cos2 = tf.repeat(cos, 2, axis=-1)[:, :, None]
        sin2 = tf.reshape(tf.stack([-sin, sin], axis=-1), tf.concat([tf.shape(sin)[:-1], [rotary_dim]], 0))[:, :, None]
        rot = tf.cast(x[..., :rotary_dim], cos.dtype)
        partner = tf.reshape(tf.reverse(tf.reshape(rot, tf.concat([leading, [half, 2]], 0)), [-1]), tf.shape(rot))
        out = tf.cast(rot * cos2 + partner * sin2, x.dtype)
        return out if rotary_dim == head_dim else tf.concat([out, x[..., rotary_dim:]], axis=-1)
    split = [2, half] if convention == "half" else [half, 2]
    rot = tf.cast(tf.reshape(x[..., :rotary_dim], tf.concat([leading, split], axis=0)), cos.dtype)
    axis = 3 if convention == "half" else 4
    a, b = (rot[:, :, :, :1], rot[:, :, :, 1:]) if axis == 3 else (rot[..., :1], rot[..., 1:])
    cos, sin = (tf.expand_dims(t[:, :, None], axis) for t in (cos, sin))  # over heads and the pair axis
    if inverse:
        sin = -sin
    out = tf.concat([a * cos - b * sin, b * cos + a * sin], axis=axis)
    out = tf.cast(tf.reshape(out, tf.concat([leading, [rotary_dim]], axis=0)), x.dtype)
    if rotary_dim == head_dim:
        return out
    return tf.concat([out, x[..., rotary_dim:]], axis=-1)


# One tf.function per set of static facts, each traced once: the input signatures leave batch,
# seq and heads unknown (and fix ranks, which ``reduce_retracing`` would generalise away), so new
# shapes reuse the trace while XLA compiles per concrete shape. The frequencies are arguments,
# never baked into a trace. Static facts are bound with ``functools.partial``, not closures, because
# TF's retracing detector keys on the code object and would count every key as a retrace.

@functools.lru_cache(maxsize=None)
def _compiled_cos_sin(n_axes: int, positions_dtype: tf.DType, compute: tf.DType) -> Any:
    signature = [tf.TensorSpec([None, None] + ([n_axes] if n_axes > 1 else []), positions_dtype),
                 tf.TensorSpec([None], compute), tf.TensorSpec([], compute), tf.TensorSpec([None], tf.int32)]
    return tf.function(functools.partial(_cos_sin), jit_compile=True, input_signature=signature)


@functools.lru_cache(maxsize=None)
def _compiled_rotate(convention: str, rotary_dim: int, head_dim: int, dtype: tf.DType, inverse: bool = False
                     ) -> Any:
    table = tf.TensorSpec([None, None, rotary_dim // 2], _compute_dtype(dtype))
    signature = [tf.TensorSpec([None, None, None, head_dim], dtype), table, table]
    body = functools.partial(_rotate, convention=convention, rotary_dim=rotary_dim, head_dim=head_dim,
                             inverse=inverse)
    return tf.function(body, jit_compile=True, input_signature=signature)


def _rotations(xs: tuple[tf.Tensor, ...], cos: tf.Tensor, sin: tf.Tensor, key: tuple) -> tuple[tf.Tensor, ...]:
    """Each of ``xs`` through the compiled rotation, its gradient the same compiled rotation by -phi
    (R(phi)^T = R(-phi)) instead of TF's gradient graph of the forward (about 4x slower); cos/sin come
    from integer positions and get no gradient. Graph code: _graph_rope and _graph_rotate trace it."""
    forward, backward = _compiled_rotate(*key), _compiled_rotate(*key, inverse=True)

    @tf.custom_gradient
    def rotate(x: tf.Tensor) -> tuple[tf.Tensor, Any]:
        return forward(x, cos, sin), lambda dy: backward(dy, cos, sin)

    return tuple(rotate(x) for x in xs)


# One eager call per rope call: a graph function (no jit_compile) that calls the XLA-compiled cos/sin
# and rotation, with the custom gradient recorded inside it. Called eagerly, every tf.function costs
# ~0.4 ms on this 2-core CPU whatever its size, and an eager tf.custom_gradient adds an identity per
# output and a stop_gradient (~0.7 ms): decode-b64 float32 forward went 2.4 -> 1.9 ms, q+k 5.2 -> 2.2
# ms, forward+backward 5.6 -> 3.7 ms, prefill-2048 bfloat16 forward+backward 16.8 -> 12.8 ms (medians
# of 60 calls, machine otherwise idle). The outer function is not itself jit_compile: that took SAM 2
# forward+backward from 13 to 20 ms (cause not measured), and one XLA cluster would fuse cos/sin into
# the rotation again.

@functools.lru_cache(maxsize=None)
def _graph_rope(convention: str, rotary_dim: int, head_dim: int, dtype: tf.DType, tensors: int, n_axes: int,
                positions_dtype: tf.DType) -> Any:
    """(x, [k,] positions, inv_freq, scale, axes) -> the rotated tensors: cos/sin per token, then the
    rotation of each tensor."""
    compute = _compute_dtype(dtype)
    cos_sin = _compiled_cos_sin(n_axes, positions_dtype, compute)
    key = (convention, rotary_dim, head_dim, dtype)

    def rope(*args: tf.Tensor) -> tuple[tf.Tensor, ...]:
        xs, arguments = args[:tensors], args[tensors:]
        return _rotations(xs, *cos_sin(*arguments), key)

    signature = [tf.TensorSpec([None, None, None, head_dim], dtype)] * tensors + [
        tf.TensorSpec([None, None] + ([n_axes] if n_axes > 1 else []), positions_dtype),
        tf.TensorSpec([None], compute), tf.TensorSpec([], compute), tf.TensorSpec([None], tf.int32)]
    return tf.function(rope, input_signature=signature, autograph=False)


@functools.lru_cache(maxsize=None)
def _graph_rotate(convention: str, rotary_dim: int, head_dim: int, dtype: tf.DType, tensors: int) -> Any:
    """(x, [k,] cos, sin) -> the rotated tensors: the rotation of each by given cos/sin (the table path)."""
    key = (convention, rotary_dim, head_dim, dtype)

    def rotate(*args: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return _rotations(args[:tensors], *args[tensors:], key)

    table = tf.TensorSpec([None, None, rotary_dim // 2], _compute_dtype(dtype))
    signature = [tf.TensorSpec([None, None, None, head_dim], dtype)] * tensors + [table, table]
    return tf.function(rotate, input_signature=signature, autograph=False)


def _table(values: tf.Tensor, inv_freq: tf.Tensor, scale: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(a cos(v inv_freq), a sin(v inv_freq)) [len(values), r/2]: _cos_sin's float32 ops on the same
    values, so bit-identical to it."""
    v = tf.cast(values, inv_freq.dtype)[:, None] * inv_freq
    cos, sin = _cos_sin_of(v)
    return cos * scale, sin * scale


def _gather_rows(table_cos: tf.Tensor, table_sin: tf.Tensor, positions: tf.Tensor, low: tf.Tensor,
                 axes: tf.Tensor, n_axes: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Each token's table row [batch, seq, r/2], per pair from the pair's stream (a row gather per
    stream, then a select). A cluster of its own: fused with the table XLA would evaluate cos/sin per
    gathered element (as it does in JAX: 53 ms instead of 2 ms at SAM 2 64x64)."""
    streams = (positions if n_axes > 1 else positions[..., None]) - low
    cos = sin = None
    for stream in range(n_axes):
        rows_cos, rows_sin = (tf.gather(t, streams[..., stream], axis=0) for t in (table_cos, table_sin))
        mine = tf.equal(axes, stream)
        cos = rows_cos if cos is None else tf.where(mine, rows_cos, cos)
        sin = rows_sin if sin is None else tf.where(mine, rows_sin, sin)
    return cos, sin


@functools.lru_cache(maxsize=None)
def _compiled_table(positions_dtype: tf.DType, compute: tf.DType) -> Any:
    signature = [tf.TensorSpec([None], positions_dtype), tf.TensorSpec([None], compute), tf.TensorSpec([], compute)]
    return tf.function(functools.partial(_table), jit_compile=True, input_signature=signature)


@functools.lru_cache(maxsize=None)
def _compiled_gather(n_axes: int, positions_dtype: tf.DType, compute: tf.DType) -> Any:
    table = tf.TensorSpec([None, None], compute)
    signature = [table, table, tf.TensorSpec([None, None] + ([n_axes] if n_axes > 1 else []), positions_dtype),
                 tf.TensorSpec([], positions_dtype), tf.TensorSpec([None], tf.int32)]
    return tf.function(functools.partial(_gather_rows, n_axes=n_axes), jit_compile=True, input_signature=signature)


_TABLE_MIN_ANGLES = 1 << 16  # below this the trig is cheap and the host read of min/max is not paid


def _rope(spec: RopeSpec, xs: tuple[tf.Tensor, ...], positions: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Each of ``xs`` (one dtype) rotated: host frequencies, then one graph call (cos/sin per token and
    the rotation), or the table path.

    cos/sin are a separate XLA cluster from the rotation: fused into it, XLA recomputes cos/sin for
    every head (about 3x slower on CPU at [4, 512, 32, 128]).
    """
    dtype = xs[0].dtype
    compute = _compute_dtype(dtype)
    arguments = _frequency_arguments(spec, positions, compute)
    static = (spec.convention, spec.rotary_dim, spec.head_dim, dtype, len(xs))
    tokens = positions.shape[0] * positions.shape[1]
    if tf.executing_eagerly() and tokens * spec.n_pairs >= _TABLE_MIN_ANGLES:
        # fewer distinct position values than tokens (SAM 2 64x64: 64 for 16384): a table of those
        # values' cos/sin and a row gather, bit-identical; one host read of min/max decides
        low, high = int(tf.reduce_min(positions)), int(tf.reduce_max(positions))
        if high - low + 1 < tokens:
            inv_freq, scale, axes = arguments
            low_ = tf.constant(low, positions.dtype)
            table = _compiled_table(positions.dtype, compute)(low_ + tf.range(high - low + 1, dtype=positions.dtype),
                                                              inv_freq, scale)
            cos_sin = _compiled_gather(spec.n_axes, positions.dtype, compute)(*table, positions, low_, axes)
            return _graph_rotate(*static)(*xs, *cos_sin)
    return _graph_rope(*static, spec.n_axes, positions.dtype)(*xs, positions, *arguments)


class TensorFlowRope:
    """The plug-in object: ``rope``/``rope_qk`` under XLA, differentiable with ``tf.GradientTape``."""

    framework = "tensorflow"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        """Every spec feature, in float64, float32, float16 and bfloat16."""
        return dtype_name in _DTYPES and frequencies.implemented(spec)

    def rope(self, x: Any, positions: Any, spec: RopeSpec) -> tf.Tensor:
        """Rotate x [batch, seq, heads, head_dim] at integer positions [batch, seq] (or
        [batch, seq, n_axes]); a new tensor of x's shape and dtype."""
        x, positions = tf.convert_to_tensor(x), tf.convert_to_tensor(positions)
        _check_shapes(x, positions, spec)
        return _rope(spec, (x,), positions)[0]

    def rope_qk(self, q: Any, k: Any, positions: Any, spec: RopeSpec) -> tuple[tf.Tensor, tf.Tensor]:
        """Rotate q and k (heads may differ, as with GQA) with one cos/sin table."""
        q, k, positions = tf.convert_to_tensor(q), tf.convert_to_tensor(k), tf.convert_to_tensor(positions)
        _check_shapes(q, positions, spec)
        _check_shapes(k, positions, spec)
        if q.dtype != k.dtype:
            raise ValueError(f"k.dtype={k.dtype.name} is invalid: must equal q.dtype={q.dtype.name}")
        return _rope(spec, (q, k), positions)


IMPLEMENTATION = TensorFlowRope()
