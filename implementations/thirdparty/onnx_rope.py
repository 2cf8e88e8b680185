"""The ONNX ``RotaryEmbedding`` operator (opset 23) in ``onnx.reference`` and onnxruntime.

A one-node model ``Y = RotaryEmbedding(X, cos_cache, sin_cache[, position_ids])`` built with
``onnx.helper`` (the node's attributes per the operator schema, ``onnx/defs/nn/defs.cc``),
run by ``onnx.reference.ReferenceEvaluator`` (``ONNX_REFERENCE``: the schema's own numpy
code, ``onnx/reference/ops/op_rotary_embedding.py``) or an onnxruntime CPU
``InferenceSession`` (``ONNXRUNTIME``). Models have symbolic batch, heads, seq, head and
cache sizes, so one model (and session) is built per (table or per-token caches,
interleaved, rotary_embedding_dim, element type) and reused.

Spec -> model:
  * ``convention`` -> ``interleaved`` (1 for "interleaved", 0 for "half").
  * ``rotary_dim`` -> ``rotary_embedding_dim`` when r < head_dim (unset: the whole head).
  * x [batch, seq, heads, head] goes in as the 4D input [batch, heads, seq, head] the schema
    defines, and the output is transposed back.
  * ``base``, ``scaling`` and ``multi_axis`` are not attributes: the operator takes the
    angles as data, ``cos_cache``/``sin_cache`` [.., r/2], with the attention factor folded
    in. The exporters that emit this operator compute those caches in the framework the
    model came from and store them; here the framework is the float64 reference
    (``rope_suite.conformance.reference.cos_sin``), rounded to the model's element type. So what this
    adapter tests is the operator: the pairing, the rotation, the pass-through tail, the
    lookup by ``position_ids`` and the layout; the angle arithmetic is not ONNX's, and large
    positions are as accurate as the cache's element type allows. ``supplied`` says so:
    frequencies, scaling and attention factor come from :data:`SUPPLIER`.
  * 1D positions -> ``position_ids`` [batch, seq] (int64) into a table [rows, r/2]: the table
    is rows 0..max(position) when that is at most :data:`DENSE_TABLE_ROWS` rows, so the
    operator gathers by the real positions; past that (positions up to 2^30 would need a
    table of 2^30 rows) the table holds only the positions the call uses and
    ``position_ids`` index into it. Sequence-dependent scalings (dynamic NTK, LongRoPE) get
    this call's max(position) + 1 either way. A table shorter than the sequence is padded
    with zero rows that no position_id reaches: onnxruntime's CPU kernel rejects a table with
    fewer rows than seq ("Updating cos_cache and sin_cache in RotaryEmbedding is not
    currently supported"), which the schema allows but no exporter's table (one row per
    ``max_position_embeddings``) ever is.
  * Multi-axis positions (M-RoPE, 2D axial): one table row cannot serve pairs driven by
    different position streams, so these use the operator's other form: no
    ``position_ids``, caches [batch, seq, r/2] per token. The suite gathers each token's cos/sin
    (which pair turns with which axis), so ``positions`` (the multi-axis part) is supplied too.

Dtypes: the schema's type constraint T is float, float16 or bfloat16. ``ONNX_REFERENCE``
supports exactly those (a float64 model is not valid ONNX, though the numpy evaluator would
run it). ``ONNXRUNTIME`` supports float32 and float16, what its CPU provider runs; a bfloat16
model fails to load (NOT_IMPLEMENTED: no CPU ``Mul`` for bfloat16).
"""

from __future__ import annotations

import importlib
from typing import Any

import ml_dtypes
import numpy as np

from rope_suite.conformance import reference
from rope_suite.conformance.spec import RopeSpec

OPSET = 23
DENSE_TABLE_ROWS = 1 << 16
"""Largest position table [rows, r/2] indexed by the real positions; beyond, only the used rows."""
NUMPY_DTYPES: dict[str, Any] = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
SUPPLIER = "the suite's float64 reference (cos/sin caches)"
SUPPLIED: dict[str, str] = {"frequencies": SUPPLIER, "scaling": SUPPLIER, "attention_factor": SUPPLIER,
                            "positions": "the suite's float64 reference (per-token cos/sin caches, multi-axis specs)"}


def _onnx() -> Any:
    return importlib.import_module("onnx")


def rotary_model(with_position_ids: bool, interleaved: bool, rotary_dim: int | None, dtype_name: str) -> Any:
    """The one-node opset-23 model; ``rotary_dim`` None rotates the whole head."""
    onnx = _onnx()
    helper = onnx.helper
    elem = {"float32": onnx.TensorProto.FLOAT, "float16": onnx.TensorProto.FLOAT16,
            "bfloat16": onnx.TensorProto.BFLOAT16}[dtype_name]
    x_shape = ["batch", "heads", "seq", "head"]
    cache_shape = ["rows", "pairs"] if with_position_ids else ["batch", "seq", "pairs"]
    inputs = [helper.make_tensor_value_info("X", elem, x_shape),
              helper.make_tensor_value_info("cos_cache", elem, cache_shape),
              helper.make_tensor_value_info("sin_cache", elem, cache_shape)]
    if with_position_ids:
        inputs.append(helper.make_tensor_value_info("position_ids", onnx.TensorProto.INT64, ["batch", "seq"]))
    attributes = {"interleaved": int(interleaved)}
    if rotary_dim is not None:
        attributes["rotary_embedding_dim"] = rotary_dim
    node = helper.make_node("RotaryEmbedding", [i.name for i in inputs], ["Y"], **attributes)
    graph = helper.make_graph([node], "rotary_embedding", inputs, [helper.make_tensor_value_info("Y", elem, x_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def cache_table(positions: np.ndarray, spec: RopeSpec, seq: int) -> dict[str, np.ndarray]:
    """Float64 caches [rows, r/2] with a row per position (0..max(position) when that is below
    DENSE_TABLE_ROWS, else only the positions used; every pair at that position, on every axis),
    padded to at least ``seq`` rows (onnxruntime's kernels want rows >= seq), and the positions as
    row indices (``ids``, the shape of ``positions``)."""
    pos = np.asarray(positions).astype(np.int64)
    top = int(pos.max()) if pos.size else 0
    if top < DENSE_TABLE_ROWS:
        rows, ids = np.arange(top + 1), pos
    else:
        rows, inverse = np.unique(pos, return_inverse=True)
        ids = inverse.reshape(pos.shape).astype(np.int64)
    table = rows[None, :] if spec.n_axes == 1 else np.repeat(rows[None, :, None], spec.n_axes, axis=-1)
    cos, sin = reference.cos_sin(table, spec)  # max(rows) = max(positions): same sequence length
    pad = ((0, max(0, seq - len(rows))), (0, 0))
    return {"cos_cache": np.pad(cos[0], pad), "sin_cache": np.pad(sin[0], pad), "ids": ids}


def caches(positions: np.ndarray, spec: RopeSpec) -> dict[str, np.ndarray]:
    """The operator's cache inputs (float64) and, for 1D positions, ``position_ids``."""
    if spec.n_axes > 1:
        cos, sin = reference.cos_sin(positions, spec)  # [batch, seq, r/2] per token
        return {"cos_cache": cos, "sin_cache": sin}
    table = cache_table(positions, spec, positions.shape[1])
    return {"cos_cache": table["cos_cache"], "sin_cache": table["sin_cache"], "position_ids": table["ids"]}


REPRODUCTION = """import numpy as np
import onnx
from onnx import helper

# Supplied by the suite's float64 reference: the inverse frequencies, the attention factor{axes_note}.
THETA = np.array({theta!r}, dtype=np.float64)
ATTENTION_FACTOR = {factor!r}
{axes_line}

def make():
    elem = {{"float32": onnx.TensorProto.FLOAT, "float16": onnx.TensorProto.FLOAT16,
            "bfloat16": onnx.TensorProto.BFLOAT16}}[{dtype_name!r}]
    x_shape = ["batch", "heads", "seq", "head"]
    cache_shape = {cache_shape!r}
    inputs = [helper.make_tensor_value_info("X", elem, x_shape),
              helper.make_tensor_value_info("cos_cache", elem, cache_shape),
              helper.make_tensor_value_info("sin_cache", elem, cache_shape)]
    if AXES is None:
        inputs.append(helper.make_tensor_value_info("position_ids", onnx.TensorProto.INT64, ["batch", "seq"]))
    node = helper.make_node("RotaryEmbedding", [i.name for i in inputs], ["Y"], **{attributes!r})
    graph = helper.make_graph([node], "rotary_embedding", inputs, [helper.make_tensor_value_info("Y", elem, x_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", {opset})])
{session}
    def rope(x, positions):
        if AXES is not None:  # per-token caches [batch, seq, r/2]
            phi = positions[..., AXES].astype(np.float64) * THETA
            feeds = {{"cos_cache": ATTENTION_FACTOR * np.cos(phi), "sin_cache": ATTENTION_FACTOR * np.sin(phi)}}
        else:  # a table [rows, r/2] indexed by position_ids
            pos = positions.astype(np.int64)
            top = int(pos.max()) if pos.size else 0
            if top < {dense}:
                rows, ids = np.arange(top + 1), pos
            else:
                rows, inverse = np.unique(pos, return_inverse=True)
                ids = inverse.reshape(pos.shape).astype(np.int64)
            phi = rows[None, :][..., None].astype(np.float64) * THETA
            cos, sin = ATTENTION_FACTOR * np.cos(phi), ATTENTION_FACTOR * np.sin(phi)
            pad = ((0, max(0, pos.shape[1] - len(rows))), (0, 0))  # onnxruntime wants rows >= seq
            feeds = {{"cos_cache": np.pad(cos[0], pad), "sin_cache": np.pad(sin[0], pad), "position_ids": ids}}
        feeds = {{k: v if k == "position_ids" else v.astype(x.dtype) for k, v in feeds.items()}}
        feeds["X"] = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
        y = session.run(None, feeds)[0]
        return np.ascontiguousarray(y.transpose(0, 2, 1, 3))

    return rope
"""
SESSIONS = {"reference": """    from onnx.reference import ReferenceEvaluator
    session = ReferenceEvaluator(model)
""", "onnxruntime": """    import onnxruntime
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
"""}


class OnnxRope:
    """The RotaryEmbedding-23 operator on one runtime (``"reference"`` or ``"onnxruntime"``)."""

    framework = "numpy"
    device = "cpu"
    supplied: dict[str, str] = SUPPLIED

    def __init__(self, runtime: str) -> None:
        if runtime not in ("reference", "onnxruntime"):
            raise ValueError(f"runtime={runtime!r} is invalid: allowed 'reference', 'onnxruntime'")
        self.runtime = runtime
        self._sessions: dict[tuple[bool, bool, int | None, str], Any] = {}

    def __repr__(self) -> str:
        return f"OnnxRope({self.runtime!r})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if self.runtime == "onnxruntime":
            return dtype_name in ("float32", "float16")
        return dtype_name in NUMPY_DTYPES

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Python source whose ``make()`` builds this model and session once and returns
        ``rope(x, positions)`` on numpy arrays, with the caches :func:`caches` makes from the
        reference's frequencies, written in as numbers (they are supplied, not ONNX's). None when
        unsupported or when the frequencies depend on the call's length (dynamic NTK, LongRoPE)."""
        if not self.supports(spec, dtype_name) or spec.sequence_dependent:
            return None
        multi = spec.n_axes > 1
        attributes = {"interleaved": int(spec.convention == "interleaved")}
        if spec.rotary_dim < spec.head_dim:
            attributes["rotary_embedding_dim"] = spec.rotary_dim
        axes = reference.pair_axes(spec).tolist() if multi else None
        return REPRODUCTION.format(
            theta=reference.inverse_frequencies(spec).tolist(), factor=reference.attention_factor(spec),
            axes_note=", which axis drives each pair" if multi else "", axes_line=f"AXES = {axes!r}\n",
            dtype_name=dtype_name, cache_shape=["batch", "seq", "pairs"] if multi else ["rows", "pairs"],
            attributes=attributes, opset=OPSET, session=SESSIONS[self.runtime], dense=DENSE_TABLE_ROWS)

    def session(self, with_position_ids: bool, interleaved: bool, rotary_dim: int | None, dtype_name: str) -> Any:
        """The evaluator or inference session for one model structure, built once."""
        key = (with_position_ids, interleaved, rotary_dim, dtype_name)
        if key not in self._sessions:
            model = rotary_model(*key)
            if self.runtime == "reference":
                self._sessions[key] = importlib.import_module("onnx.reference").ReferenceEvaluator(model)
            else:
                ort = importlib.import_module("onnxruntime")
                self._sessions[key] = ort.InferenceSession(model.SerializeToString(),
                                                           providers=["CPUExecutionProvider"])
        return self._sessions[key]

    def rope(self, x: np.ndarray, positions: np.ndarray, spec: RopeSpec) -> np.ndarray:
        """x [batch, seq, heads, head_dim] (float32/float16/bfloat16) at integer positions."""
        dtype_name = np.dtype(x.dtype).name
        if dtype_name not in NUMPY_DTYPES:
            raise ValueError(f"x.dtype={x.dtype} is invalid: RotaryEmbedding-{OPSET} takes float32, float16, bfloat16")
        feeds = caches(np.asarray(positions), spec)
        with_ids = "position_ids" in feeds
        partial = spec.rotary_dim if spec.rotary_dim < spec.head_dim else None
        session = self.session(with_ids, spec.convention == "interleaved", partial, dtype_name)
        feeds = {k: v if k == "position_ids" else v.astype(x.dtype) for k, v in feeds.items()}
        feeds["X"] = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
        y = session.run(None, feeds)[0]
        return np.ascontiguousarray(y.transpose(0, 2, 1, 3))


ONNX_REFERENCE = OnnxRope("reference")
ONNXRUNTIME = OnnxRope("onnxruntime")
