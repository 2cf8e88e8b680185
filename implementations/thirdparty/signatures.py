"""Bare RoPE functions as plug-ins: the common calling conventions, one record each.

Most RoPE code in the wild is a function, not a plug-in. ``rope-suite check FILE.py:FUNC
--signature NAME`` wraps FUNC in the plug-in contract according to NAME's calling convention;
the suite then supplies what the convention leaves to the caller (cos/sin tables, a complex
``freqs_cis``), computed by the float64 reference (``rope_suite.conformance.reference``) and
handed over in the case's dtype, as callers do. What it supplies is stated in the plug-in's
``supplied`` mapping (parts of ``spec.PARTS``), so those parts are never graded as the
function's.

Common to every signature: the suite hands the function the rotating channels ``x[..., :r]``
(r = rotary_dim) and concatenates the pass-through tail back, as callers of these functions do
(HF GPT-NeoX slices ``q_rot``); the function's framework is the first of torch, jax, tensorflow
that its module imports (numpy otherwise).

Signatures (x is the suite's [batch, seq, heads, head_dim]):
  * ``x-cos-sin``: ``f(x, cos, sin) -> x``, cos/sin [batch, seq, 1, r] laid out ``cat(t, t)``
    (HF rotate-half); rotate-half specs only.
  * ``x-cos-sin-interleaved``: the same with the ``repeat_interleave(t, 2)`` layout (GPT-J's
    rotate_every_two); interleaved specs only.
  * ``qk-cos-sin``: ``f(q, k, cos, sin) -> (q, k)``, q/k [batch, heads, seq, r], cos/sin
    [batch, seq, r] (HF ``apply_rotary_pos_emb`` with its default unsqueeze_dim=1); rotate-half.
  * ``x-freqs-cis``: ``f(x, freqs_cis) -> x``, freqs_cis complex [seq, r/2] (Meta Llama's, after
    slicing by ``start_pos``), called once per batch row, since Meta's table has no batch axis;
    interleaved (adjacent channels form the complex number).
  * ``x-seq-dim``: ``f(x, seq_len, dim) -> x``, x [rows, seq_len, dim], token i at position i,
    base 10000, no scaling; rotate-half. The suite lays each token out at its position in rows
    of length max(position) + 1 (zeros elsewhere; heads and repeated positions in rows of their
    own) and reads it back, so any positions up to :data:`SEQ_DIM_MAX_POSITION` are expressed;
    cases reaching further are skipped through ``max_position``.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rope_suite.conformance import frameworks, reference
from rope_suite.conformance.spec import RopeSpec

SEQ_DIM_MAX_POSITION = 8191
"""The largest position ``x-seq-dim`` expresses: the function gets rows of up to 8192 tokens."""

_REFERENCE_TABLES = "the suite's float64 reference ({what}, rounded to {dtype})"


def _supplied(what: str, dtype: str) -> dict[str, str]:
    who = _REFERENCE_TABLES.format(what=what, dtype=dtype)
    return {part: who for part in ("frequencies", "scaling", "attention_factor", "positions")}


# --- framework-neutral array operations --------------------------------------------------------

class _Ops:
    """The few array operations a wrapper needs, in one framework (all differentiable)."""

    def __init__(self, framework: str) -> None:
        self.framework = framework
        if framework == "torch":
            torch = importlib.import_module("torch")
            self.cat = lambda xs, axis: torch.cat(list(xs), dim=axis)
            self.take = lambda a, idx: a[torch.as_tensor(idx, device=a.device)]
            self.transpose = lambda a, perm: a.permute(*perm)
            self.complex = torch.complex
        elif framework == "jax":
            jax, jnp = importlib.import_module("jax"), importlib.import_module("jax.numpy")
            self.cat = lambda xs, axis: jnp.concatenate(list(xs), axis=axis)
            self.take = lambda a, idx: jnp.take(a, jnp.asarray(idx), axis=0)
            self.transpose = jnp.transpose
            self.complex = jax.lax.complex
        elif framework == "tensorflow":
            tf = importlib.import_module("tensorflow")
            self.cat = lambda xs, axis: tf.concat(list(xs), axis=axis)
            self.take = lambda a, idx: tf.gather(a, idx, axis=0)
            self.transpose = tf.transpose
            self.complex = tf.complex
        else:
            self.cat = lambda xs, axis: np.concatenate(list(xs), axis=axis)
            self.take = lambda a, idx: np.take(a, idx, axis=0)
            self.transpose = np.transpose
            self.complex = lambda c, s: c + 1j * s

    def reshape(self, a: Any, shape: tuple[int, ...]) -> Any:
        if self.framework == "torch":
            return a.reshape(shape)
        if self.framework == "tensorflow":
            return importlib.import_module("tensorflow").reshape(a, shape)
        return a.reshape(shape)

    def native(self, table: np.ndarray, dtype: str, like: Any = None) -> Any:
        return frameworks.to_native(self.framework, table, dtype, getattr(like, "device", "cpu") if
                                    self.framework == "torch" else "cpu")


def dtype_of(framework: str, x: Any) -> str:
    return frameworks.dtype_name(framework, x)


def framework_of(fn: Callable[..., Any]) -> str:
    """The first of torch, jax, tensorflow whose module (or a submodule) ``fn``'s module imports;
    numpy when none is."""
    imported = {value.__name__.split(".")[0] for value in getattr(fn, "__globals__", {}).values()
                if isinstance(value, types.ModuleType)}
    return next((fw for fw in ("torch", "jax", "tensorflow") if fw in imported), "numpy")


def with_tail(ops: _Ops, out: Any, x: Any, spec: RopeSpec) -> Any:
    """The rotated channels followed by x's pass-through tail."""
    return out if spec.rotary_dim == spec.head_dim else ops.cat([out, x[..., spec.rotary_dim:]], -1)


# --- x-seq-dim: tokens laid out at their positions ---------------------------------------------

def token_lanes(positions: np.ndarray, heads: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Lay tokens [batch, seq, heads] out in rows of length L = max(position) + 1 so that token
    (b, s, h) sits at index positions[b, s] of its row: (rows [n_rows, L] of token numbers
    b*seq*heads + s*heads + h, or -1 for an empty slot; slot [tokens] of each token in the flattened
    rows; L). Tokens of one batch row and head share a row unless they repeat a position."""
    batch, seq = positions.shape
    length = int(positions.max()) + 1 if positions.size else 1
    rows: list[np.ndarray] = []
    slot = np.empty(batch * seq * heads, dtype=np.int64)
    for b in range(batch):
        lanes: list[np.ndarray] = []
        for s in range(seq):
            p = int(positions[b, s])
            lane = next((i for i, row in enumerate(lanes) if row[p] < 0), None)
            if lane is None:
                lanes.append(np.full(length, -1, dtype=np.int64))
                lane = len(lanes) - 1
            lanes[lane][p] = s
        for h in range(heads):
            for row in lanes:
                token = np.where(row >= 0, (b * seq + row) * heads + h, -1)
                slot[token[token >= 0]] = len(rows) * length + np.flatnonzero(row >= 0)
                rows.append(token)
    return np.stack(rows), slot, length


# --- the signatures -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Signature:
    """One calling convention.

    name: what ``--signature`` takes. call: the convention in one line. supplies: which parts the
    suite supplies, in words (the plug-in's ``supplied`` mapping says it per part). expresses: the
    specs it can express, in words; ``conventions`` and ``plain_only`` decide it. wrap: the plug-in
    class taking (function, framework).
    """

    name: str
    call: str
    supplies: str
    expresses: str
    conventions: tuple[str, ...]
    wrap: Callable[..., Any]
    plain_only: bool = False

    def expressible(self, spec: RopeSpec) -> bool:
        if spec.convention not in self.conventions:
            return False
        return not self.plain_only or (spec.base == 10000.0 and spec.scaling is None and spec.multi_axis is None)


class _Wrapped:
    """A function under a signature, as a plug-in. ``supplied`` says what the suite supplies."""

    def __init__(self, fn: Callable[..., Any], signature: Signature, framework: str | None = None) -> None:
        self.fn, self.signature = fn, signature
        self.framework = framework or framework_of(fn)
        self.ops = _Ops(self.framework)
        self.supplied = self._supplied()

    def _supplied(self) -> dict[str, str]:
        return _supplied("cos/sin tables", "x's dtype")

    def supports(self, spec: RopeSpec, dtype: str) -> bool:
        return self.signature.expressible(spec)

    def __repr__(self) -> str:
        return f"<{getattr(self.fn, '__qualname__', self.fn)} under --signature {self.signature.name}>"


def cos_sin_tables(positions: np.ndarray, spec: RopeSpec) -> tuple[np.ndarray, np.ndarray]:
    """The reference's (a cos phi, a sin phi) laid out per channel, float64 [batch, seq, r]."""
    cos, sin = reference.cos_sin(np.asarray(positions), spec)
    return (reference.expand_to_channels(cos, spec.convention),
            reference.expand_to_channels(sin, spec.convention))


class XCosSin(_Wrapped):
    def rope(self, x: Any, positions: Any, spec: RopeSpec) -> Any:
        dtype = dtype_of(self.framework, x)
        cos, sin = cos_sin_tables(frameworks.to_numpy(self.framework, positions), spec)
        cos, sin = (self.ops.native(t[:, :, None, :], dtype, x) for t in (cos, sin))
        return with_tail(self.ops, self.fn(x[..., :spec.rotary_dim], cos, sin), x, spec)


class QKCosSin(_Wrapped):
    def rope_qk(self, q: Any, k: Any, positions: Any, spec: RopeSpec) -> tuple[Any, Any]:
        dtype, r, ops = dtype_of(self.framework, q), spec.rotary_dim, self.ops
        cos, sin = (ops.native(t, dtype, q) for t in cos_sin_tables(frameworks.to_numpy(self.framework, positions), spec))
        heads_first = (0, 2, 1, 3)
        got_q, got_k = self.fn(ops.transpose(q[..., :r], heads_first), ops.transpose(k[..., :r], heads_first), cos, sin)
        return (with_tail(ops, ops.transpose(got_q, heads_first), q, spec),
                with_tail(ops, ops.transpose(got_k, heads_first), k, spec))

    def rope(self, x: Any, positions: Any, spec: RopeSpec) -> Any:
        return self.rope_qk(x, x, positions, spec)[0]


class XFreqsCis(_Wrapped):
    def _supplied(self) -> dict[str, str]:
        return _supplied("a complex freqs_cis", "complex64, complex128 for float64 x")

    def rope(self, x: Any, positions: Any, spec: RopeSpec) -> Any:
        dtype, ops = dtype_of(self.framework, x), self.ops
        cos, sin = reference.cos_sin(frameworks.to_numpy(self.framework, positions), spec)
        real = "float64" if dtype == "float64" else "float32"
        rows = []
        for b in range(cos.shape[0]):  # Meta's freqs_cis is [seq, r/2]: one table per batch row
            freqs_cis = ops.complex(ops.native(cos[b], real, x), ops.native(sin[b], real, x))
            rows.append(self.fn(x[b:b + 1, ..., :spec.rotary_dim], freqs_cis))
        return with_tail(ops, ops.cat(rows, 0), x, spec)


class XSeqDim(_Wrapped):
    max_position = SEQ_DIM_MAX_POSITION

    def _supplied(self) -> dict[str, str]:
        return {}  # the function makes its own positions, frequencies and rotation

    def rope(self, x: Any, positions: Any, spec: RopeSpec) -> Any:
        ops, r = self.ops, spec.rotary_dim
        batch, seq, heads, _ = (int(n) for n in x.shape)
        rows, slot, length = token_lanes(frameworks.to_numpy(self.framework, positions), heads)
        tokens = ops.reshape(x[..., :r], (batch * seq * heads, r))
        padded = ops.cat([tokens, tokens[:1] * 0], 0)  # index -1 reads this zero row
        laid_out = ops.take(padded, np.where(rows < 0, batch * seq * heads, rows).reshape(-1))
        out = self.fn(ops.reshape(laid_out, (rows.shape[0], length, r)), length, r)
        back = ops.take(ops.reshape(out, (rows.shape[0] * length, -1)), slot)
        return with_tail(ops, ops.reshape(back, (batch, seq, heads, -1)), x, spec)


_CALLER_TABLES = "frequencies, scaling, attention factor and positions (the cos/sin tables, from the float64 reference)"
SIGNATURES: dict[str, Signature] = {s.name: s for s in (
    Signature("x-cos-sin", "f(x, cos, sin) -> x; x [batch, seq, heads, r], cos/sin [batch, seq, 1, r] as cat(t, t)",
              _CALLER_TABLES, "rotate-half specs", ("half",), XCosSin),
    Signature("x-cos-sin-interleaved", "f(x, cos, sin) -> x; cos/sin [batch, seq, 1, r] as repeat_interleave(t, 2)",
              _CALLER_TABLES, "interleaved specs", ("interleaved",), XCosSin),
    Signature("qk-cos-sin", "f(q, k, cos, sin) -> (q, k); q/k [batch, heads, seq, r], cos/sin [batch, seq, r] "
              "(HF apply_rotary_pos_emb)", _CALLER_TABLES, "rotate-half specs", ("half",), QKCosSin),
    Signature("x-freqs-cis", "f(x, freqs_cis) -> x; x [1, seq, heads, r], freqs_cis complex [seq, r/2] "
              "(Meta Llama), once per batch row",
              "frequencies, scaling, attention factor and positions (freqs_cis, from the float64 reference)",
              "interleaved specs", ("interleaved",), XFreqsCis),
    Signature("x-seq-dim", "f(x, seq_len, dim) -> x; x [rows, seq_len, dim], token i at position i",
              "nothing (the suite lays tokens out at their positions)",
              "rotate-half, base 10000, no scaling, one position axis, positions up to 8191", ("half",), XSeqDim,
              plain_only=True),
)}


def signature(name: str) -> Signature:
    """The signature called ``name``; ValueError listing the allowed names otherwise."""
    try:
        return SIGNATURES[name]
    except KeyError:
        raise ValueError(f"--signature {name!r} is invalid: allowed {', '.join(SIGNATURES)}") from None


def wrap(fn: Callable[..., Any], name: str, framework: str | None = None) -> Any:
    """``fn`` as a plug-in under the signature ``name``."""
    sig = signature(name)
    return sig.wrap(fn, sig, framework)
