"""The spec: every invalid input gets a ValueError naming the field and what is allowed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

from rope_suite.conformance import presets as presets_module
from rope_suite.conformance import reference
from rope_suite.conformance.presets import PRESETS, preset
from rope_suite.conformance.spec import Axial2D, MRope, RopeSpec, SpecError
from rope_suite.conformance.strategies import specs

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}

# (id, kwargs, pattern the message must match)
INVALID = [
    ("odd_head_dim", dict(head_dim=7), r"head_dim=7 is invalid: must be even"),
    ("zero_head_dim", dict(head_dim=0), r"head_dim=0 is invalid: must be a positive integer"),
    ("float_head_dim", dict(head_dim=64.0), r"head_dim=64.0 is invalid: must be a positive integer"),
    ("odd_rotary_dim", dict(head_dim=64, rotary_dim=15), r"rotary_dim=15 is invalid: must be even"),
    ("rotary_dim_over_head_dim", dict(head_dim=64, rotary_dim=66), r"rotary_dim=66 is invalid: must be <= head_dim=64"),
    ("negative_rotary_dim", dict(head_dim=64, rotary_dim=-2), r"rotary_dim=-2 is invalid: must be a positive integer"),
    ("base_one", dict(head_dim=64, base=1.0), r"base=1.0 is invalid: must be > 1"),
    ("base_negative", dict(head_dim=64, base=-5), r"base=-5 is invalid: must be > 1"),
    ("base_nan", dict(head_dim=64, base=float("nan")), r"base=nan is invalid: must be a finite number"),
    ("unknown_convention", dict(head_dim=64, convention="neox"),
     r"convention='neox' is invalid: allowed: 'half' .* or 'interleaved'"),
    ("unknown_rope_type", dict(head_dim=64, scaling={"rope_type": "su", "factor": 2.0}),
     r"scaling.rope_type='su' is invalid: allowed: linear, ntk, dynamic, yarn, llama3, longrope"),
    ("missing_rope_type", dict(head_dim=64, scaling={"factor": 2.0}), r"scaling.rope_type=None is invalid: is missing"),
    ("type_disagrees", dict(head_dim=64, scaling={"type": "linear", "rope_type": "yarn", "factor": 2.0}),
     r"scaling.type='linear' is invalid: disagrees with rope_type='yarn'"),
    ("scaling_not_mapping", dict(head_dim=64, scaling="linear"), r"scaling='linear' is invalid: must be None or a mapping"),
    ("missing_factor", dict(head_dim=64, scaling={"rope_type": "linear"}),
     r"scaling.factor is missing: rope_type 'linear' requires factor"),
    ("factor_below_one", dict(head_dim=64, scaling={"rope_type": "linear", "factor": 0.5}),
     r"scaling.factor=0.5 is invalid: must be >= 1"),
    ("factor_string", dict(head_dim=64, scaling={"rope_type": "linear", "factor": "2"}),
     r"scaling.factor='2' is invalid: must be a finite number"),
    ("dynamic_missing_original", dict(head_dim=64, scaling={"rope_type": "dynamic", "factor": 2.0}),
     r"scaling.original_max_position_embeddings is missing: rope_type 'dynamic' requires"),
    ("original_zero", dict(head_dim=64, scaling={"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 0}),
     r"scaling.original_max_position_embeddings=0 is invalid: must be a positive integer"),
    ("llama3_missing_low_freq", dict(head_dim=64, scaling={k: v for k, v in LLAMA3.items() if k != "low_freq_factor"}),
     r"scaling.low_freq_factor is missing: rope_type 'llama3' requires"),
    ("llama3_high_not_above_low", dict(head_dim=64, scaling=LLAMA3 | {"high_freq_factor": 1.0}),
     r"scaling.high_freq_factor=1.0 is invalid: must be > low_freq_factor=1"),
    ("yarn_beta_fast_below_slow", dict(head_dim=64, scaling={"rope_type": "yarn", "factor": 4.0,
                                                             "original_max_position_embeddings": 4096, "beta_fast": 1.0, "beta_slow": 2.0}),
     r"scaling.beta_fast=1.0 is invalid: must be > beta_slow=2"),
    ("yarn_negative_mscale", dict(head_dim=64, scaling={"rope_type": "yarn", "factor": 4.0,
                                                        "original_max_position_embeddings": 4096, "mscale": -1.0}),
     r"scaling.mscale=-1.0 is invalid: must be >= 0"),
    ("yarn_truncate_not_bool", dict(head_dim=64, scaling={"rope_type": "yarn", "factor": 4.0,
                                                          "original_max_position_embeddings": 4096, "truncate": "no"}),
     r"scaling.truncate='no' is invalid: must be true or false"),
    ("parameter_of_other_type", dict(head_dim=64, scaling={"rope_type": "linear", "factor": 2.0, "beta_fast": 32}),
     r"scaling.beta_fast=32 is invalid: is not a parameter of rope_type 'linear'; allowed: factor"),
    ("longrope_short_factor_length", dict(head_dim=8, scaling={"rope_type": "longrope", "factor": 2.0,
                                                               "original_max_position_embeddings": 64,
                                                               "short_factor": [1.0] * 3, "long_factor": [1.0] * 4}),
     r"scaling.short_factor='<3 values>' is invalid: must have rotary_dim/2 = 4 values"),
    ("longrope_factor_not_positive", dict(head_dim=4, scaling={"rope_type": "longrope", "factor": 2.0,
                                                               "original_max_position_embeddings": 64,
                                                               "short_factor": [1.0, 1.0], "long_factor": [1.0, 0.0]}),
     r"scaling.long_factor\[1\]=0.0 is invalid: must be > 0"),
    ("ntk_rotary_dim_two", dict(head_dim=2, scaling={"rope_type": "ntk", "factor": 2.0}),
     r"rotary_dim=2 is invalid: must be >= 4 for rope_type 'ntk'"),
    ("mrope_in_scaling", dict(head_dim=64, scaling={"rope_type": "linear", "factor": 2.0, "mrope_section": [8, 12, 12]}),
     r"scaling.mrope_section=\[8, 12, 12\] is invalid: belongs to multi_axis=MRope"),
    ("mrope_sections_sum", dict(head_dim=128, multi_axis=MRope((16, 24, 16))),
     r"multi_axis.sections=\(16, 24, 16\) is invalid: must sum to rotary_dim/2 = 64 \(they sum to 56\)"),
    ("mrope_sections_negative", dict(head_dim=8, multi_axis=MRope((6, -2))),
     r"multi_axis.sections=\(6, -2\) is invalid: must be a tuple of non-negative integers"),
    ("mrope_sections_list", dict(head_dim=8, multi_axis=MRope([2, 2])),
     r"multi_axis.sections=\[2, 2\] is invalid: must be a tuple"),
    ("mrope_interleaved_two_sections", dict(head_dim=8, multi_axis=MRope((2, 2), interleaved=True)),
     r"interleaved M-RoPE \(Qwen3-VL\) takes exactly 3 sections"),
    ("mrope_with_dynamic", dict(head_dim=8, multi_axis=MRope((2, 1, 1)),
                                scaling={"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 8}),
     r"scaling.rope_type='dynamic' is invalid: is not defined with M-RoPE positions"),
    ("axial_rotary_not_multiple_of_four", dict(head_dim=6, multi_axis=Axial2D()),
     r"rotary_dim=6 is invalid: must be a multiple of 4 for 2D axial RoPE"),
    ("axial_with_scaling", dict(head_dim=8, multi_axis=Axial2D(), scaling={"rope_type": "linear", "factor": 2.0}),
     r"scaling='linear' is invalid: must be None with 2D axial RoPE"),
    ("multi_axis_wrong_type", dict(head_dim=8, multi_axis=(2, 2)),
     r"multi_axis=\(2, 2\) is invalid: must be None, MRope\(sections=...\) or Axial2D\(\)"),
]


@pytest.mark.parametrize("kwargs, pattern", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_spec_names_field_and_allowed_values(kwargs: dict, pattern: str) -> None:
    with pytest.raises(SpecError, match=pattern):
        RopeSpec(**kwargs)


def test_spec_error_is_a_value_error() -> None:
    assert issubclass(SpecError, ValueError)


POSITIONS_INVALID = [
    ("negative", np.array([[0, 1, -3]]), r"positions\[0, 2\]=-3 is invalid: positions must be >= 0"),
    ("float", np.array([[0.0, 1.0]]), r"positions.dtype=float64 is invalid: positions must be integers"),
    ("bool", np.array([[True, False]]), r"positions.dtype=bool is invalid"),
    ("rank_one", np.array([0, 1, 2]), r"positions.shape=\(3,\) is invalid: this spec takes positions \[batch, seq\]"),
]


@pytest.mark.parametrize("positions, pattern", [c[1:] for c in POSITIONS_INVALID], ids=[c[0] for c in POSITIONS_INVALID])
def test_invalid_positions_are_rejected(positions: np.ndarray, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        reference.angles(positions, RopeSpec(head_dim=8))


def test_multi_axis_positions_need_the_axis_count() -> None:
    with pytest.raises(ValueError, match=r"positions.shape=\(1, 3\) is invalid: this spec takes positions \[batch, seq, 3\]"):
        reference.angles(np.zeros((1, 3), dtype=np.int64), PRESETS["qwen2-vl"])


def test_positions_must_match_x() -> None:
    x = np.zeros((2, 3, 1, 8))
    with pytest.raises(ValueError, match=r"its \(batch, seq\) must match x's \(2, 3\)"):
        reference.apply(x, np.zeros((2, 4), dtype=np.int64), RopeSpec(head_dim=8))


def test_x_must_have_head_dim_last() -> None:
    with pytest.raises(ValueError, match=r"x.shape=\(2, 3, 1, 6\) is invalid: expected \[batch, seq, heads, head_dim=8\]"):
        reference.apply(np.zeros((2, 3, 1, 6)), np.zeros((2, 3), dtype=np.int64), RopeSpec(head_dim=8))


def test_sequence_dependent_frequencies_need_seq_len() -> None:
    spec = RopeSpec(head_dim=8, scaling={"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 16})
    with pytest.raises(ValueError, match=r"seq_len=None is invalid: rope_type 'dynamic' needs the sequence length"):
        reference.inverse_frequencies(spec)


def test_unknown_preset_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown preset 'llama9'; known presets: llama2-7b, "):
        preset("llama9")


# --- valid specs ------------------------------------------------------------------------------

def test_rotary_dim_defaults_to_head_dim_and_spec_is_frozen() -> None:
    spec = RopeSpec(head_dim=64)
    assert spec.rotary_dim == 64 and spec.n_pairs == 32 and spec.rope_type == "default"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.base = 2.0  # type: ignore[misc]
    assert hash(spec) == hash(RopeSpec(head_dim=64, rotary_dim=64))


def test_pasted_hf_rope_scaling_is_accepted_with_legacy_type_key() -> None:
    spec = RopeSpec(head_dim=128, scaling={"type": "linear", "factor": 4.0})
    assert spec.scaling.rope_type == "linear" and spec.scaling.factor == 4.0
    assert RopeSpec(head_dim=8, scaling={"rope_type": "default"}).scaling is None


def test_replace_head_dim_keeps_full_rotary_full() -> None:
    assert RopeSpec(head_dim=128).replace(head_dim=64).rotary_dim == 64
    assert RopeSpec(head_dim=128, rotary_dim=32).replace(head_dim=64).rotary_dim == 32


def test_replace_revalidates() -> None:
    with pytest.raises(SpecError, match=r"rotary_dim=130 is invalid"):
        PRESETS["llama2-7b"].replace(rotary_dim=130)


@given(specs())
def test_to_dict_round_trips(spec: RopeSpec) -> None:
    assert RopeSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_and_are_cited(name: str) -> None:
    spec = PRESETS[name]
    assert RopeSpec.from_dict(spec.to_dict()) == spec
    lines = Path(presets_module.__file__).read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f'"{name}":'))
    assert lines[at - 1].strip().startswith("#"), f"preset {name} has no comment citing its source above it"


HF_CONFIGS = [
    ("llama3.1-8b", {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "rope_theta": 500000.0,
                     "max_position_embeddings": 131072, "rope_scaling": {
                         "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"}}),
    ("gpt-neox-20b", {"model_type": "gpt_neox", "hidden_size": 6144, "num_attention_heads": 64,
                      "rotary_pct": 0.25, "rotary_emb_base": 10000, "max_position_embeddings": 2048}),
    ("gpt-j-6b", {"model_type": "gptj", "n_embd": 4096, "hidden_size": 4096, "num_attention_heads": 16,
                  "rotary_dim": 64}),
    ("phi-2", {"model_type": "phi", "hidden_size": 2560, "num_attention_heads": 32,
               "partial_rotary_factor": 0.4, "rope_theta": 10000.0}),
    ("qwen2-vl", {"model_type": "qwen2_vl", "hidden_size": 3584, "num_attention_heads": 28, "rope_theta": 1000000.0,
                  "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}}),
    ("qwen3-vl", {"model_type": "qwen3_vl_text", "head_dim": 128, "hidden_size": 4096, "num_attention_heads": 32,
                  "rope_theta": 5000000, "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20],
                                                          "mrope_interleaved": True}}),
]


@pytest.mark.parametrize("name, config", HF_CONFIGS, ids=[c[0] for c in HF_CONFIGS])
def test_from_hf_config_matches_preset(name: str, config: dict) -> None:
    assert RopeSpec.from_hf_config(config) == PRESETS[name]


def test_from_hf_config_fills_original_length_from_max_position_embeddings() -> None:
    spec = RopeSpec.from_hf_config({"hidden_size": 64, "num_attention_heads": 2, "max_position_embeddings": 4096,
                                    "rope_scaling": {"type": "dynamic", "factor": 2.0}})
    assert spec.scaling.original_max_position_embeddings == 4096


def test_from_hf_config_resolves_longrope_factor_like_hf() -> None:
    """Phi-3-128k style: no factor in the dict; HF uses max / original = 131072 / 4096 = 32."""
    spec = RopeSpec.from_hf_config({"hidden_size": 3072, "num_attention_heads": 32, "max_position_embeddings": 131072,
                                    "original_max_position_embeddings": 4096, "rope_scaling": {
                                        "type": "longrope", "short_factor": [1.0] * 48, "long_factor": [2.0] * 48}})
    assert spec.scaling.factor == 32.0 and spec.scaling.original_max_position_embeddings == 4096


def test_from_hf_config_dynamic_grows_past_max_position_embeddings() -> None:
    spec = RopeSpec.from_hf_config({"hidden_size": 64, "num_attention_heads": 2, "max_position_embeddings": 8192,
                                    "rope_scaling": {"rope_type": "dynamic", "factor": 2.0,
                                                     "original_max_position_embeddings": 4096}})
    assert spec.scaling.original_max_position_embeddings == 8192
