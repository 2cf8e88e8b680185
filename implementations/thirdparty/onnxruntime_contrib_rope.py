"""onnxruntime's contrib operators ``com.microsoft.RotaryEmbedding`` and ``MRotaryEmbedding`` (CPU).

These are the operators onnxruntime's transformer optimizer and onnxruntime-genai's model
builder emit (before RotaryEmbedding joined the ONNX standard at opset 23), with CPU kernels in
``onnxruntime/contrib_ops/cpu/bert/rotary_embedding.cc`` (and ``mrotary_embedding.cc``); the
schemas are ``onnxruntime/core/graph/contrib_ops/bert_defs.cc``. A one-node model
``Y = RotaryEmbedding(X, position_ids, cos_cache, sin_cache)`` is built with ``onnx.helper`` and
run by an onnxruntime CPU ``InferenceSession``; one model and session per structure (operator,
element type, pairing, rotary dim, heads, position form), kept across calls as a user keeps a
session. Batch, sequence and cache sizes are symbolic.

Spec -> model:
  * ``convention`` -> ``interleaved`` (1 for "interleaved", 0 for "half").
  * ``rotary_dim`` -> ``rotary_embedding_dim`` when r < head_dim (0, the default: the whole
    head); the kernel then requires ``num_heads``, which is always set (the heads of x).
  * x [batch, seq, heads, head] goes in as the schema's 3D input [batch, seq, heads * head]
    (a reshape, no copy of the layout); the output is reshaped back.
  * Positions: ``position_ids`` [batch, seq] (int64), or the schema's offset form, a [1] tensor
    holding the start, when every row is the same ``start + arange(seq)`` (prefill, a chunk
    continuing a cache shared by the batch). M-RoPE: ``position_ids`` [3, batch, seq], the
    (t, h, w) streams, and ``mrope_section`` = the spec's sections, ``mrope_layout`` 1 for
    interleaved sections (Qwen3-VL), 0 for chunked (Qwen2-VL): the operator gathers each
    section's cos/sin by its own stream, so the multi-axis part is the operator's.
  * ``base``, ``scaling`` and the attention factor are not attributes: the operator takes
    ``cos_cache``/``sin_cache`` [rows, r/2] as data, one row per position. Exporters compute
    those tables in the framework the model came from and store them; here that is the float64
    reference (``rope_suite.conformance.reference.cos_sin``), rounded to the element type, so
    ``supplied`` names frequencies, scaling and attention factor. The table is rows
    0..max(position) up to ``onnx_rope.DENSE_TABLE_ROWS`` rows; past that only the rows the
    call uses, with ``position_ids`` indexing them (as the ONNX adapter does). The kernel
    rejects a table with fewer rows than seq ("Updating cos_cache and sin_cache in
    RotaryEmbedding is not currently supported"), so a short table is padded with zero rows
    no position reaches; a position past the table is an INVALID_ARGUMENT error.
  * The ``scale`` attribute is left at its default: the CPU kernels read it and never use it
    (it is for a cache update that is not implemented), which a probe confirms: scale=0.5
    gives bit-identical output.

Dtypes: the schema allows float, float16 and bfloat16; the CPU provider registers float and
float16 kernels only (a bfloat16 model fails to load: NOT_IMPLEMENTED, "Could not find an
implementation for RotaryEmbedding(1)"), and float64 is not in the schema. No 2D axial: the
schema has no form for it (MRotaryEmbedding has exactly three streams and its own layouts).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from rope_suite.conformance import reference
from rope_suite.conformance.spec import MRope, RopeSpec
from rope_suite.implementations.thirdparty.onnx_rope import DENSE_TABLE_ROWS, cache_table

DOMAIN = "com.microsoft"
DTYPES: tuple[str, ...] = ("float32", "float16")
SUPPLIER = "the suite's float64 reference (cos/sin caches)"
SUPPLIED: dict[str, str] = {"frequencies": SUPPLIER, "scaling": SUPPLIER, "attention_factor": SUPPLIER}


def feeds_for(positions: np.ndarray, spec: RopeSpec, seq: int) -> dict[str, np.ndarray]:
    """``position_ids`` (int64, [1], [batch, seq] or [3, batch, seq]) and the caches (float64)."""
    table = cache_table(positions, spec, seq)
    ids = table.pop("ids")
    if spec.n_axes > 1:
        table["position_ids"] = np.ascontiguousarray(np.moveaxis(ids, -1, 0))  # [3, batch, seq]
    elif ids.size and np.array_equal(ids, np.broadcast_to(ids[0, 0] + np.arange(ids.shape[1]), ids.shape)):
        table["position_ids"] = ids[0, :1].copy()  # the offset form: start + s for every row
    else:
        table["position_ids"] = ids
    return table


def model_for(spec: RopeSpec, dtype_name: str, heads: int, offset_form: bool) -> Any:
    """The one-node model for this structure (batch, seq and cache rows symbolic)."""
    onnx = importlib.import_module("onnx")
    helper = onnx.helper
    elem = {"float32": onnx.TensorProto.FLOAT, "float16": onnx.TensorProto.FLOAT16,
            "bfloat16": onnx.TensorProto.BFLOAT16}[dtype_name]
    mrope = isinstance(spec.multi_axis, MRope)
    pos_shape = [3, "batch", "seq"] if mrope else [1] if offset_form else ["batch", "seq"]
    inputs = [helper.make_tensor_value_info("X", elem, ["batch", "seq", heads * spec.head_dim]),
              helper.make_tensor_value_info("position_ids", onnx.TensorProto.INT64, pos_shape),
              helper.make_tensor_value_info("cos_cache", elem, ["rows", spec.n_pairs]),
              helper.make_tensor_value_info("sin_cache", elem, ["rows", spec.n_pairs])]
    attributes: dict[str, Any] = {"interleaved": int(spec.convention == "interleaved"), "num_heads": heads}
    if spec.rotary_dim < spec.head_dim:
        attributes["rotary_embedding_dim"] = spec.rotary_dim
    if mrope:
        attributes["mrope_section"] = list(spec.multi_axis.sections)
        attributes["mrope_layout"] = int(spec.multi_axis.interleaved)
    node = helper.make_node("MRotaryEmbedding" if mrope else "RotaryEmbedding", [i.name for i in inputs], ["Y"],
                            domain=DOMAIN, **attributes)
    output = helper.make_tensor_value_info("Y", elem, ["batch", "seq", heads * spec.head_dim])
    graph = helper.make_graph([node], "rotary_embedding", inputs, [output])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(DOMAIN, 1)])


REPRODUCTION = """import numpy as np
import onnx
import onnxruntime
from onnx import helper

# Supplied by the suite's float64 reference: the inverse frequencies and the attention factor.
THETA = np.array({theta!r}, dtype=np.float64)
ATTENTION_FACTOR = {factor!r}
HEAD_DIM = {head_dim!r}
MROPE = {mrope!r}
sessions = {{}}


def session_for(heads, offset_form):
    if (heads, offset_form) not in sessions:
        elem = onnx.TensorProto.{elem}
        pos_shape = [3, "batch", "seq"] if MROPE else [1] if offset_form else ["batch", "seq"]
        inputs = [helper.make_tensor_value_info("X", elem, ["batch", "seq", heads * HEAD_DIM]),
                  helper.make_tensor_value_info("position_ids", onnx.TensorProto.INT64, pos_shape),
                  helper.make_tensor_value_info("cos_cache", elem, ["rows", {pairs}]),
                  helper.make_tensor_value_info("sin_cache", elem, ["rows", {pairs}])]
        node = helper.make_node({op!r}, [i.name for i in inputs], ["Y"], domain="com.microsoft",
                                num_heads=heads, **{attributes!r})
        output = helper.make_tensor_value_info("Y", elem, ["batch", "seq", heads * HEAD_DIM])
        model = helper.make_model(helper.make_graph([node], "rotary_embedding", inputs, [output]),
                                  opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
        sessions[heads, offset_form] = onnxruntime.InferenceSession(model.SerializeToString(),
                                                                    providers=["CPUExecutionProvider"])
    return sessions[heads, offset_form]


def make():
    def rope(x, positions):
        batch, seq, heads, _ = x.shape
        pos = positions.astype(np.int64)
        top = int(pos.max()) if pos.size else 0
        if top < {dense}:  # a table of rows 0..max(position)
            rows, ids = np.arange(top + 1), pos
        else:  # only the rows used, position_ids indexing them
            rows, inverse = np.unique(pos, return_inverse=True)
            ids = inverse.reshape(pos.shape).astype(np.int64)
        phi = rows[:, None].astype(np.float64) * THETA
        pad = ((0, max(0, seq - len(rows))), (0, 0))  # the kernel wants rows >= seq
        feeds = {{"cos_cache": np.pad(ATTENTION_FACTOR * np.cos(phi), pad).astype(x.dtype),
                 "sin_cache": np.pad(ATTENTION_FACTOR * np.sin(phi), pad).astype(x.dtype)}}
        offset_form = False
        if MROPE:
            feeds["position_ids"] = np.ascontiguousarray(np.moveaxis(ids, -1, 0))  # [3, batch, seq]
        elif ids.size and np.array_equal(ids, np.broadcast_to(ids[0, 0] + np.arange(seq), ids.shape)):
            feeds["position_ids"], offset_form = ids[0, :1].copy(), True  # start + s in every row
        else:
            feeds["position_ids"] = ids
        feeds["X"] = np.ascontiguousarray(x).reshape(batch, seq, heads * HEAD_DIM)
        y = session_for(heads, offset_form).run(None, feeds)[0]
        return y.reshape(x.shape)

    return rope
"""


class OnnxRuntimeContribRope:
    """``com.microsoft.RotaryEmbedding`` (``mrope=False``) or ``MRotaryEmbedding`` (``mrope=True``)."""

    framework = "numpy"
    device = "cpu"
    supplied: dict[str, str] = SUPPLIED

    def __init__(self, mrope: bool) -> None:
        self.mrope = mrope
        self._sessions: dict[tuple[Any, ...], Any] = {}

    def __repr__(self) -> str:
        return f"OnnxRuntimeContribRope(mrope={self.mrope})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES:
            return False
        if self.mrope:
            return isinstance(spec.multi_axis, MRope) and len(spec.multi_axis.sections) == 3
        return spec.multi_axis is None

    def session(self, spec: RopeSpec, dtype_name: str, heads: int, offset_form: bool) -> Any:
        """The inference session for one model structure, built once."""
        key = (spec.convention, spec.head_dim, spec.rotary_dim, spec.multi_axis, dtype_name, heads, offset_form)
        if key not in self._sessions:
            ort = importlib.import_module("onnxruntime")
            model = model_for(spec, dtype_name, heads, offset_form)
            self._sessions[key] = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return self._sessions[key]

    def rope(self, x: np.ndarray, positions: np.ndarray, spec: RopeSpec) -> np.ndarray:
        """x [batch, seq, heads, head_dim] (float32 or float16) at integer positions."""
        dtype_name = np.dtype(x.dtype).name
        if dtype_name not in DTYPES:
            raise ValueError(f"x.dtype={x.dtype} is invalid: onnxruntime's CPU kernels take float32, float16")
        if not self.supports(spec, dtype_name):
            raise ValueError(f"{self!r} does not express this spec (multi_axis={spec.multi_axis!r})")
        batch, seq, heads, head = x.shape
        feeds = feeds_for(positions, spec, seq)
        feeds = {k: v if k == "position_ids" else v.astype(x.dtype) for k, v in feeds.items()}
        feeds["X"] = np.ascontiguousarray(x).reshape(batch, seq, heads * head)
        offset_form = feeds["position_ids"].ndim == 1
        y = self.session(spec, dtype_name, heads, offset_form).run(None, feeds)[0]
        return y.reshape(x.shape)

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Python source whose ``make()`` returns ``rope(x, positions)`` on numpy arrays, building and
        keeping a session per (heads, position form) as this adapter does, with the caches made from
        the reference's frequencies written in as numbers (they are supplied). None when unsupported
        or when the frequencies depend on the call's length (dynamic NTK, LongRoPE)."""
        if not self.supports(spec, dtype_name) or spec.sequence_dependent:
            return None
        attributes: dict[str, Any] = {"interleaved": int(spec.convention == "interleaved")}
        if spec.rotary_dim < spec.head_dim:
            attributes["rotary_embedding_dim"] = spec.rotary_dim
        if self.mrope:
            attributes["mrope_section"] = list(spec.multi_axis.sections)
            attributes["mrope_layout"] = int(spec.multi_axis.interleaved)
        return REPRODUCTION.format(
            theta=reference.inverse_frequencies(spec).tolist(), factor=reference.attention_factor(spec), head_dim=spec.head_dim,
            mrope=self.mrope, elem={"float32": "FLOAT", "float16": "FLOAT16"}[dtype_name], pairs=spec.n_pairs,
            op="MRotaryEmbedding" if self.mrope else "RotaryEmbedding", attributes=attributes,
            dense=DENSE_TABLE_ROWS)


ROTARY_EMBEDDING = OnnxRuntimeContribRope(mrope=False)
MROTARY_EMBEDDING = OnnxRuntimeContribRope(mrope=True)
