"""The RoPE specification: one frozen, validated value that names exactly one RoPE variant.

A :class:`RopeSpec` says everything an implementation needs to rotate a tensor the way a
given model does: head size, how many channels rotate, the frequency base, how channels
pair up, how frequencies are scaled for long context, and which position stream drives
which pair. The float64 reference (:mod:`rope_suite.conformance.reference`) turns a spec into numbers;
every check and every implementation is keyed by one.

Scaling parameters use Hugging Face's key names (``rope_type``, ``factor``,
``original_max_position_embeddings``, ...) so that a model's ``rope_scaling`` config can be
pasted in as it is. The facts behind each field are collected in ROPE-SEMANTICS.md.

Invalid input raises :class:`ValueError` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

Convention = Literal["half", "interleaved"]
CONVENTIONS: tuple[str, ...] = ("half", "interleaved")

PARTS: dict[str, str] = {
    "frequencies": "the inverse frequencies base^(-2i/r)",
    "scaling": "the rope_scaling adjustment of the frequencies (linear, ntk, dynamic, yarn, llama3, longrope)",
    "attention_factor": "the magnitude factor (YaRN's mscale, LongRoPE's)",
    "positions": "turning positions into angles: the multi-axis sections and axes (M-RoPE, 2D axial)",
    "rotation": "rotating the channel pairs of x with cos and sin",
}
"""The parts of computing RoPE. A plug-in whose library leaves some to its caller (a function
fed cos/sin tables, an operator fed caches) says so in its optional ``supplied`` mapping, part
-> who supplies it (``{"frequencies": "HF's GPTNeoXRotaryEmbedding"}``); a feature resting on
a supplied part is reported "not tested (supplied)", never graded as the library's."""


class SpecError(ValueError):
    """An invalid RoPE spec: the message names the field, the value and what is allowed."""


def _fail(where: str, value: Any, allowed: str) -> SpecError:
    return SpecError(f"{where}={value!r} is invalid: {allowed}")


# --- scaling types -------------------------------------------------------------------------------
# One record per rope_type holds everything the suite needs to know about it except its formula,
# which is its function in the reference (reference.FREQUENCIES, and ATTENTION_FACTORS where it
# scales cos/sin). Adding a rope_type is a record here and a function there: validation, the
# hypothesis strategy, the example specs every profile runs and the table's column follow.

@dataclass(frozen=True)
class ScalingType:
    """One ``rope_type``.

    name: HF's rope_type; required / optional: its ``rope_scaling`` keys (``factor`` always
    required); sequence_dependent: frequencies depend on max(position) + 1 (so undefined with
    M-RoPE); min_rotary_dim: the smallest rotary_dim its formula is defined for; rules: checks
    across keys, raising SpecError; examples: named specs (RopeSpec keyword arguments) the checks
    run, the first one also in the quick profile; boundary: an example whose original length
    is 6, run at sequence lengths 6 and 7 (L == L0 and L0 + 1, where > vs >= bugs live);
    draw_params: hypothesis-drawn values of its own keys, ``draw_params(draw, st, rotary_dim)``;
    column: its column in the conformance table.
    """

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    sequence_dependent: bool = False
    min_rotary_dim: int = 2
    rules: Callable[[dict[str, Any]], None] | None = None
    examples: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    boundary: str | None = None
    draw_params: Callable[[Any, Any, int], dict[str, Any]] | None = None

    @property
    def column(self) -> str:
        return self.name


def _llama3_rules(p: dict[str, Any]) -> None:
    if p["high_freq_factor"] <= p["low_freq_factor"]:
        raise _fail("scaling.high_freq_factor", p["high_freq_factor"], f"must be > low_freq_factor={p['low_freq_factor']:g}")


def _yarn_rules(p: dict[str, Any]) -> None:
    fast, slow = p.get("beta_fast", 32.0), p.get("beta_slow", 1.0)
    if fast <= slow:
        raise _fail("scaling.beta_fast", fast, f"must be > beta_slow={slow:g}")


def _draw_yarn(draw: Any, st: Any, rotary_dim: int) -> dict[str, Any]:
    slow = draw(st.floats(0.5, 4.0))
    out = {"beta_slow": slow, "beta_fast": slow + draw(st.floats(1.0, 64.0)), "truncate": draw(st.booleans())}
    if draw(st.booleans()):
        out |= {"mscale": draw(st.floats(0.1, 2.0)), "mscale_all_dim": draw(st.floats(0.1, 2.0))}
    return out


def _draw_llama3(draw: Any, st: Any, rotary_dim: int) -> dict[str, Any]:
    low = draw(st.floats(0.5, 2.0))
    return {"low_freq_factor": low, "high_freq_factor": low + draw(st.floats(0.5, 8.0))}


def _draw_longrope(draw: Any, st: Any, rotary_dim: int) -> dict[str, Any]:
    factors = st.lists(st.floats(1.0, 64.0), min_size=rotary_dim // 2, max_size=rotary_dim // 2)
    return {"short_factor": draw(factors), "long_factor": draw(factors)}


_SHORT = [1.0 + 0.05 * i for i in range(24)]
_LONG = [1.0 + 1.5 * i for i in range(24)]

SCALING_TYPES: dict[str, ScalingType] = {t.name: t for t in (
    ScalingType("linear", ("factor",), examples={
        "linear-x4": dict(head_dim=64, scaling={"rope_type": "linear", "factor": 4.0})}),
    ScalingType("ntk", ("factor",), min_rotary_dim=4, examples={
        "ntk-x8": dict(head_dim=64, scaling={"rope_type": "ntk", "factor": 8.0})}),
    ScalingType("dynamic", ("factor", "original_max_position_embeddings"), sequence_dependent=True,
                min_rotary_dim=4, boundary="dynamic-boundary", examples={
        # an original length the positions exceed (grown base), one far above every position
        # (default frequencies), and the boundary
        "dynamic-above": dict(head_dim=64, scaling={"rope_type": "dynamic", "factor": 4.0,
                                                    "original_max_position_embeddings": 256}),
        "dynamic-below": dict(head_dim=64, scaling={"rope_type": "dynamic", "factor": 4.0,
                                                    "original_max_position_embeddings": 1 << 22}),
        "dynamic-boundary": dict(head_dim=64, scaling={"rope_type": "dynamic", "factor": 4.0,
                                                       "original_max_position_embeddings": 6})}),
    ScalingType("yarn", ("factor", "original_max_position_embeddings"),
                ("beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor", "truncate"),
                min_rotary_dim=4, rules=_yarn_rules, draw_params=_draw_yarn, examples={
        # DeepSeek-V2 style: mscale and mscale_all_dim give the attention factor
        "yarn-mscale": dict(head_dim=64, scaling={"rope_type": "yarn", "factor": 40.0,
                                                  "original_max_position_embeddings": 4096, "beta_fast": 32.0,
                                                  "beta_slow": 1.0, "mscale": 0.707, "mscale_all_dim": 0.707}),
        "yarn-untruncated": dict(head_dim=64, rotary_dim=32, convention="interleaved", scaling={
            "rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 2048, "truncate": False})}),
    ScalingType("llama3", ("factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"),
                rules=_llama3_rules, draw_params=_draw_llama3),  # examples: the Llama 3.1 preset
    ScalingType("longrope", ("factor", "original_max_position_embeddings", "short_factor", "long_factor"),
                ("attention_factor",), sequence_dependent=True, draw_params=_draw_longrope,
                boundary="longrope-boundary", examples={
        "longrope-short": dict(head_dim=48, scaling={"rope_type": "longrope", "factor": 32.0,
                                                     "original_max_position_embeddings": 1 << 22,
                                                     "short_factor": _SHORT, "long_factor": _LONG}),
        "longrope-long": dict(head_dim=48, scaling={"rope_type": "longrope", "factor": 32.0,
                                                    "original_max_position_embeddings": 256,
                                                    "short_factor": _SHORT, "long_factor": _LONG}),
        "longrope-boundary": dict(head_dim=48, scaling={"rope_type": "longrope", "factor": 32.0,
                                                        "original_max_position_embeddings": 6,
                                                        "short_factor": _SHORT, "long_factor": _LONG})}),
)}


def _number(where: str, value: Any, *, minimum: float, inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, value, "must be a finite number")
    if value < minimum or (not inclusive and value == minimum):
        bound = ">=" if inclusive else ">"
        raise _fail(where, value, f"must be {bound} {minimum:g}")
    return float(value)


def _positive_int(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(where, value, "must be a positive integer")
    return value


@dataclass(frozen=True)
class Scaling:
    """Frequency scaling for long context, with Hugging Face's ``rope_scaling`` key names.

    Build it with :meth:`from_mapping` (what :class:`RopeSpec` does with a pasted dict);
    :meth:`to_dict` gives the mapping back, with only the keys that were set.
    """

    rope_type: str
    factor: float
    original_max_position_embeddings: int | None = None
    low_freq_factor: float | None = None
    high_freq_factor: float | None = None
    beta_fast: float | None = None
    beta_slow: float | None = None
    mscale: float | None = None
    mscale_all_dim: float | None = None
    attention_factor: float | None = None
    truncate: bool | None = None
    short_factor: tuple[float, ...] | None = None
    long_factor: tuple[float, ...] | None = None

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any], *, rotary_dim: int) -> Scaling | None:
        """Validate a ``rope_scaling`` mapping; ``None`` for ``rope_type: "default"``.

        ``type`` is accepted for ``rope_type`` (older HF configs). Keys that belong to
        multi-axis positions (``mrope_section``, ``mrope_interleaved``) are not scaling and
        must be passed to :class:`RopeSpec` as ``multi_axis`` (``RopeSpec.from_hf_config``
        does that split for a whole config).
        """
        if not isinstance(config, Mapping):
            raise _fail("scaling", config, "must be None or a mapping like a model's rope_scaling config")
        params = dict(config)
        if "type" in params and "rope_type" in params and params["type"] != params["rope_type"]:
            raise _fail("scaling.type", params["type"], f"disagrees with rope_type={params['rope_type']!r}")
        rope_type = params.pop("rope_type", params.pop("type", None))
        params.pop("type", None)
        if rope_type is None:
            raise _fail("scaling.rope_type", None, f"is missing; allowed: {', '.join(SCALING_TYPES)}")
        if rope_type == "default" and not params:
            return None
        if rope_type not in SCALING_TYPES:
            raise _fail("scaling.rope_type", rope_type, f"allowed: {', '.join(SCALING_TYPES)}")
        for key in ("mrope_section", "mrope_interleaved"):
            if key in params:
                raise _fail(f"scaling.{key}", params[key], "belongs to multi_axis=MRope(...), not to scaling")
        kind = SCALING_TYPES[rope_type]
        allowed = kind.required + kind.optional
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise _fail(f"scaling.{unknown[0]}", params[unknown[0]],
                        f"is not a parameter of rope_type {rope_type!r}; allowed: {', '.join(allowed)}")
        missing = [k for k in kind.required if params.get(k) is None]
        if missing:
            raise SpecError(f"scaling.{missing[0]} is missing: rope_type {rope_type!r} requires "
                            f"{', '.join(kind.required)}")
        return cls._validated(rope_type, params, rotary_dim)

    @classmethod
    def _validated(cls, rope_type: str, p: dict[str, Any], rotary_dim: int) -> Scaling:
        out: dict[str, Any] = {"rope_type": rope_type,
                               "factor": _number("scaling.factor", p["factor"], minimum=1.0)}
        if "original_max_position_embeddings" in p:
            out["original_max_position_embeddings"] = _positive_int(
                "scaling.original_max_position_embeddings", p["original_max_position_embeddings"])
        for key in ("low_freq_factor", "high_freq_factor", "beta_fast", "beta_slow", "attention_factor"):
            if p.get(key) is not None:
                out[key] = _number(f"scaling.{key}", p[key], minimum=0.0, inclusive=False)
        for key in ("mscale", "mscale_all_dim"):
            if p.get(key) is not None:
                out[key] = _number(f"scaling.{key}", p[key], minimum=0.0)
        rules = SCALING_TYPES[rope_type].rules
        if rules is not None:
            rules(out)
        if p.get("truncate") is not None:
            if not isinstance(p["truncate"], bool):
                raise _fail("scaling.truncate", p["truncate"], "must be true or false")
            out["truncate"] = p["truncate"]
        for key in ("short_factor", "long_factor"):
            if key in p:
                out[key] = _factor_list(f"scaling.{key}", p[key], rotary_dim // 2)
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """The HF-style mapping, with only the keys that are set (lists for factor tuples)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _factor_list(where: str, value: Any, length: int) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _fail(where, value, f"must be a list of {length} positive numbers (one per frequency)")
    if len(value) != length:
        raise _fail(where, f"<{len(value)} values>", f"must have rotary_dim/2 = {length} values")
    return tuple(_number(f"{where}[{i}]", v, minimum=0.0, inclusive=False) for i, v in enumerate(value))


@dataclass(frozen=True)
class MRope:
    """Multimodal RoPE (Qwen2-VL): positions (t, h, w); ``sections`` count frequencies per stream.

    ``sections`` sum to rotary_dim/2. Chunked (Qwen2-VL, ``interleaved=False``): frequency
    index i belongs to the stream whose block contains i. Interleaved (Qwen3-VL): i goes to
    stream 1 when i % 3 == 1 and i < 3*sections[1], to stream 2 when i % 3 == 2 and
    i < 3*sections[2], else to stream 0.
    """

    sections: tuple[int, ...]
    interleaved: bool = False

    @property
    def n_axes(self) -> int:
        return len(self.sections)


@dataclass(frozen=True)
class Axial2D:
    """2D axial RoPE for vision (SAM 2 in Ultralytics, EVA-02 style): positions (x, y).

    The rotary pairs split in two halves: the first r/4 pairs rotate with x, the last r/4
    with y, each half with its own frequencies base^(-2j/(r/2)), j < r/4 (SAM 2's
    ``compute_axial_cis``: ``arange(0, dim, 4) / dim``).
    """

    n_axes: int = field(default=2, init=False)


MultiAxis = MRope | Axial2D


@dataclass(frozen=True)
class RopeSpec:
    """Exactly one RoPE variant. Frozen and validated; hashable; ``replace`` returns a new one.

    Fields:
      head_dim: channels per head, D (even).
      rotary_dim: channels that rotate, r (even, 2 <= r <= D; default D). Pairs are formed
        inside the first r channels and the exponent denominator is r; channels r..D-1 pass
        through unchanged (HF ``partial_rotary_factor``, GPT-NeoX ``rotary_pct``).
      base: theta, > 1.
      convention: ``"half"`` pairs (i, i + r/2) (GPT-NeoX, HF Llama rotate_half);
        ``"interleaved"`` pairs (2i, 2i + 1) (GPT-J, Meta's complex form).
      scaling: None, a :class:`Scaling`, or a mapping with HF's ``rope_scaling`` keys.
      multi_axis: None (positions [batch, seq]), :class:`MRope` or :class:`Axial2D`
        (positions [batch, seq, n_axes]).
    """

    head_dim: int
    rotary_dim: int | None = None
    base: float = 10000.0
    convention: Convention = "half"
    scaling: Scaling | Mapping[str, Any] | None = None
    multi_axis: MultiAxis | None = None

    def __post_init__(self) -> None:
        head_dim = _positive_int("head_dim", self.head_dim)
        if head_dim % 2:
            raise _fail("head_dim", head_dim, "must be even")
        rotary_dim = head_dim if self.rotary_dim is None else self.rotary_dim
        _positive_int("rotary_dim", rotary_dim)
        if rotary_dim % 2:
            raise _fail("rotary_dim", rotary_dim, "must be even (channels rotate in pairs)")
        if rotary_dim > head_dim:
            raise _fail("rotary_dim", rotary_dim, f"must be <= head_dim={head_dim}")
        base = _number("base", self.base, minimum=1.0, inclusive=False)
        if self.convention not in CONVENTIONS:
            raise _fail("convention", self.convention, "allowed: 'half' (rotate-half, GPT-NeoX/Llama) "
                        "or 'interleaved' (adjacent pairs, GPT-J/Meta)")
        scaling = self.scaling
        if scaling is not None and not isinstance(scaling, Scaling):
            scaling = Scaling.from_mapping(scaling, rotary_dim=rotary_dim)
        if isinstance(scaling, Scaling) and rotary_dim < SCALING_TYPES[scaling.rope_type].min_rotary_dim:
            raise _fail("rotary_dim", rotary_dim, f"must be >= {SCALING_TYPES[scaling.rope_type].min_rotary_dim} for "
                        f"rope_type {scaling.rope_type!r} (its exponent r/(r-2) or correction range needs it)")
        _validate_multi_axis(self.multi_axis, rotary_dim, scaling)
        object.__setattr__(self, "rotary_dim", rotary_dim)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "scaling", scaling)

    # --- derived facts -------------------------------------------------------------------
    @property
    def n_pairs(self) -> int:
        """Rotating pairs per head, r/2."""
        return self.rotary_dim // 2

    @property
    def n_axes(self) -> int:
        """Position streams: 1, or the multi-axis count (positions then [batch, seq, n_axes])."""
        return 1 if self.multi_axis is None else self.multi_axis.n_axes

    @property
    def rope_type(self) -> str:
        """``"default"`` or the scaling's rope_type."""
        return "default" if self.scaling is None else self.scaling.rope_type

    @property
    def sequence_dependent(self) -> bool:
        """True when frequencies depend on max(position) + 1 (dynamic NTK, LongRoPE)."""
        return self.scaling is not None and SCALING_TYPES[self.scaling.rope_type].sequence_dependent

    def replace(self, **changes: Any) -> RopeSpec:
        """A new, validated spec with ``changes`` applied. A full-rotary spec stays full rotary
        when only ``head_dim`` changes."""
        if "head_dim" in changes and "rotary_dim" not in changes and self.rotary_dim == self.head_dim:
            changes["rotary_dim"] = None
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict that ``RopeSpec.from_dict`` reads back."""
        out: dict[str, Any] = {"head_dim": self.head_dim, "rotary_dim": self.rotary_dim,
                               "base": self.base, "convention": self.convention}
        if self.scaling is not None:
            out["scaling"] = self.scaling.to_dict()
        if isinstance(self.multi_axis, MRope):
            out["multi_axis"] = {"kind": "mrope", "sections": list(self.multi_axis.sections),
                                 "interleaved": self.multi_axis.interleaved}
        elif isinstance(self.multi_axis, Axial2D):
            out["multi_axis"] = {"kind": "axial2d"}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RopeSpec:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        axis = data.pop("multi_axis", None)
        if axis is not None:
            kind = axis.get("kind") if isinstance(axis, Mapping) else None
            if kind == "mrope":
                axis = MRope(tuple(axis["sections"]), bool(axis.get("interleaved", False)))
            elif kind == "axial2d":
                axis = Axial2D()
            else:
                raise _fail("multi_axis.kind", kind, "allowed: 'mrope', 'axial2d'")
        unknown = sorted(set(data) - {"head_dim", "rotary_dim", "base", "convention", "scaling"})
        if unknown:
            raise _fail(unknown[0], data[unknown[0]], "is not a RopeSpec field")
        return cls(**data, multi_axis=axis)

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any]) -> RopeSpec:
        """A spec from a Hugging Face model ``config.json`` (as a dict).

        Reads ``head_dim`` (or hidden_size / num_attention_heads), ``partial_rotary_factor``
        (or GPT-NeoX ``rotary_pct``, GPT-J ``rotary_dim``), ``rope_theta`` (or ``rotary_emb_base``) and
        ``rope_scaling`` (or transformers 5 ``rope_parameters``), resolving what HF resolves
        outside the dict: the original context length falls back to ``max_position_embeddings``
        (and is always that for dynamic NTK); a YaRN/LongRoPE ``factor`` left out is
        max_position_embeddings / original_max_position_embeddings.
        """
        cfg = dict(config)
        rope = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        base = rope.pop("rope_theta", cfg.get("rope_theta", cfg.get("rotary_emb_base", 10000.0)))
        fraction = rope.pop("partial_rotary_factor", cfg.get("partial_rotary_factor", cfg.get("rotary_pct")))
        rotary_dim = cfg.get("rotary_dim") or (int(head_dim * fraction) if fraction is not None else None)
        convention = "interleaved" if cfg.get("model_type") == "gptj" else "half"
        multi_axis = None
        if "mrope_section" in rope:
            multi_axis = MRope(tuple(rope.pop("mrope_section")), bool(rope.pop("mrope_interleaved", False)))
            rope.pop("mrope_interleaved", None)
            if rope.get("type") == "mrope" or rope.get("rope_type") == "mrope":
                rope.pop("type", None)
                rope.pop("rope_type", None)
        kind = rope.get("rope_type", rope.get("type", "default"))
        max_positions = cfg.get("max_position_embeddings")
        if kind == "dynamic":
            # HF's dynamic NTK grows past config.max_position_embeddings, whatever the dict says.
            rope["original_max_position_embeddings"] = max_positions
        elif kind in SCALING_TYPES and "original_max_position_embeddings" in SCALING_TYPES[kind].required:
            # A top-level original_max_position_embeddings wins over the dict's (HF's standardization).
            original = cfg.get("original_max_position_embeddings") or rope.get("original_max_position_embeddings")
            rope["original_max_position_embeddings"] = original or max_positions
            if kind in ("yarn", "longrope") and rope.get("factor") is None and original and max_positions:
                rope["factor"] = max_positions / original  # HF: the context extension ratio
        scaling = rope if rope and kind != "default" else None
        return cls(head_dim=head_dim, rotary_dim=rotary_dim, base=base, convention=convention,
                   scaling=scaling, multi_axis=multi_axis)


def _validate_multi_axis(axis: Any, rotary_dim: int, scaling: Scaling | None) -> None:
    if axis is None:
        return
    if isinstance(axis, MRope):
        sections = axis.sections
        if not isinstance(sections, tuple) or not sections or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sections):
            raise _fail("multi_axis.sections", sections, "must be a tuple of non-negative integers")
        if sum(sections) != rotary_dim // 2:
            raise _fail("multi_axis.sections", sections,
                        f"must sum to rotary_dim/2 = {rotary_dim // 2} (they sum to {sum(sections)})")
        if axis.interleaved and len(sections) != 3:
            raise _fail("multi_axis.sections", sections, "interleaved M-RoPE (Qwen3-VL) takes exactly 3 sections")
        if scaling is not None and SCALING_TYPES[scaling.rope_type].sequence_dependent:
            raise _fail("scaling.rope_type", scaling.rope_type,
                        "is not defined with M-RoPE positions (its sequence length has no single axis)")
    elif isinstance(axis, Axial2D):
        if rotary_dim % 4:
            raise _fail("rotary_dim", rotary_dim, "must be a multiple of 4 for 2D axial RoPE (pairs split over x, y)")
        if scaling is not None:
            raise _fail("scaling", scaling.rope_type, "must be None with 2D axial RoPE (no model defines it)")
    else:
        raise _fail("multi_axis", axis, "must be None, MRope(sections=...) or Axial2D()")
