"""The accuracy model itself: standard practice passes everywhere, known precision bugs fail.

Each "practice" below is a small NumPy simulation of how real code computes RoPE, differing
only in the precision of one step, so the tests pin what the bound lets through and what not.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from rope_suite.conformance import accuracy, reference
from rope_suite.conformance.frameworks import NUMPY_DTYPES, round_to
from rope_suite.conformance.presets import PRESETS
from rope_suite.conformance.spec import RopeSpec

DTYPES = ("float64", "float32", "float16", "bfloat16")


def simulated(x: np.ndarray, pos: np.ndarray, spec: RopeSpec, dtype: str, *, angle_dtype=np.float32,
              freq_dtype=np.float32, table_dtype: str | None = None, rotate_dtype: str | None = None) -> np.ndarray:
    """RoPE as code computes it: theta in ``freq_dtype``, phi = m * theta in ``angle_dtype``,
    cos/sin cast to ``table_dtype`` (default: x's dtype), the rotation in ``rotate_dtype``
    (default: x's dtype), the result stored in x's dtype."""
    if dtype == "float64":
        angle_dtype = freq_dtype = np.float64
    theta = reference.inverse_frequencies(spec, int(pos.max()) + 1).astype(freq_dtype)
    phi = (pos[..., None].astype(angle_dtype) * theta.astype(angle_dtype)).astype(angle_dtype)
    table = NUMPY_DTYPES[table_dtype or dtype]
    g = reference.attention_factor(spec)
    cos = (np.cos(phi.astype(np.float64)).astype(angle_dtype) * g).astype(table)[:, :, None, :]
    sin = (np.sin(phi.astype(np.float64)).astype(angle_dtype) * g).astype(table)[:, :, None, :]
    work = NUMPY_DTYPES[rotate_dtype or dtype]
    first, second = reference.pair_channels(spec)
    xw = x.astype(work)
    a, b = xw[..., first], xw[..., second]
    out = xw.copy()
    out[..., first] = (a * cos.astype(work)).astype(work) - (b * sin.astype(work)).astype(work)
    out[..., second] = (b * cos.astype(work)).astype(work) + (a * sin.astype(work)).astype(work)
    return out.astype(NUMPY_DTYPES[dtype]).astype(np.float64)


def case(spec: RopeSpec, dtype: str, low: int, high: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = round_to(rng.standard_normal((4, 16, 2, spec.head_dim)), dtype)
    return x, rng.integers(low, high, size=(4, 16))


def passes(got: np.ndarray, x: np.ndarray, pos: np.ndarray, spec: RopeSpec, dtype: str, strict: bool = False) -> bool:
    angles = accuracy.required_angles(dtype, strict)
    return accuracy.compare(got, reference.apply(x, pos, spec), accuracy.allowed_error(x, pos, spec, dtype, angles)).ok


SPECS = ["llama2-7b", "llama3.1-8b", "qwen2.5-7b-yarn", "gpt-j-6b", "phi-2"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("positions", [(0, 4096), ((1 << 20) - 4096, 1 << 20), ((1 << 23), (1 << 24))],
                         ids=["short", "2^20", "2^24"])
def test_standard_practice_passes(name: str, dtype: str, positions: tuple[int, int]) -> None:
    spec = PRESETS[name]
    x, pos = case(spec, dtype, *positions)
    assert passes(simulated(x, pos, spec, dtype), x, pos, spec, dtype)
    if dtype != "float64":  # computing the rotation in float32 (torchtune, flash-attn) is at least as good
        assert passes(simulated(x, pos, spec, dtype, rotate_dtype="float32", table_dtype="float32"),
                      x, pos, spec, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("low_precision", [np.float16, ml_dtypes.bfloat16], ids=["fp16", "bf16"])
def test_half_precision_angles_fail(dtype: str, low_precision) -> None:
    """HF PR 29285 / gpt-neox 1003: phi computed in half precision, at ordinary positions."""
    spec = PRESETS["llama2-7b"]
    x, pos = case(spec, dtype, 100, 4096)
    got = simulated(x, pos, spec, dtype, angle_dtype=low_precision, freq_dtype=low_precision)
    assert not passes(got, x, pos, spec, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_inverse_frequencies_cast_with_the_model_fail(dtype: str) -> None:
    """HF 25681: the inv_freq buffer cast to bf16 with the model, angles then in float32."""
    spec = PRESETS["llama2-7b"]
    x, pos = case(spec, dtype, 100, 4096)
    assert not passes(simulated(x, pos, spec, dtype, freq_dtype=ml_dtypes.bfloat16), x, pos, spec, dtype)


def test_bf16_table_for_float32_inputs_fails() -> None:
    """cos/sin kept in bf16 while x is float32: fine for bf16 models, 2^16 too coarse for float32."""
    spec = PRESETS["llama2-7b"]
    x, pos = case(spec, "float32", 0, 4096)
    assert not passes(simulated(x, pos, spec, "float32", table_dtype="bfloat16"), x, pos, spec, "float32")


def test_float32_angles_are_standard_for_float64_and_fail_strict_mode() -> None:
    """Float32 angle arithmetic on float64 inputs is standard practice (HF, torchtune, keras-hub):
    it passes and is classed "float32" angles; strict mode, for float64 users, fails it."""
    spec = PRESETS["llama2-7b"]
    x, pos = case(spec, "float64", 0, 4096)
    got = simulated(x, pos, spec, "float32", angle_dtype=np.float32)  # float32 pipeline
    got = np.asarray(got, np.float64)
    assert passes(got, x, pos, spec, "float64")
    assert not passes(got, x, pos, spec, "float64", strict=True)
    assert accuracy.angle_accuracy(got, reference.apply(x, pos, spec), x, pos, spec, "float64") == "float32"


def test_float64_angles_are_classed_float64() -> None:
    spec = PRESETS["llama3.1-8b"]
    x, pos = case(spec, "float64", 0, 1 << 20)
    got = simulated(x, pos, spec, "float64")
    assert passes(got, x, pos, spec, "float64", strict=True)
    assert accuracy.angle_accuracy(got, reference.apply(x, pos, spec), x, pos, spec, "float64") == "float64"


def test_half_precision_angles_are_no_class() -> None:
    spec = PRESETS["llama2-7b"]
    x, pos = case(spec, "float32", 100, 4096)
    got = simulated(x, pos, spec, "float32", angle_dtype=np.float16, freq_dtype=np.float16)
    assert accuracy.angle_accuracy(got, reference.apply(x, pos, spec), x, pos, spec, "float32") is None


def test_one_position_off_fails_in_every_dtype() -> None:
    spec = PRESETS["llama2-7b"]
    for dtype in DTYPES:
        x, pos = case(spec, dtype, 1, 4096)
        assert not passes(round_to(reference.apply(x, pos + 1, spec), dtype), x, pos, spec, dtype), dtype


def test_why_no_fixed_rtol_works() -> None:
    """The motivation, measured: the float32 error at 2^20 exceeds the bf16-angle error at
    small positions, so any single tolerance either fails one or passes the other."""
    spec = PRESETS["llama2-7b"]
    x, far = case(spec, "float32", (1 << 20) - 4096, 1 << 20)
    honest_far = np.max(np.abs(simulated(x, far, spec, "float32") - reference.apply(x, far, spec)))
    x, near = case(spec, "float32", 0, 16)
    buggy_near = np.max(np.abs(simulated(x, near, spec, "float32", freq_dtype=ml_dtypes.bfloat16)
                               - reference.apply(x, near, spec)))
    assert honest_far > buggy_near
    x_far, _ = case(spec, "float32", (1 << 20) - 4096, 1 << 20)
    assert passes(simulated(x_far, far, spec, "float32"), x_far, far, spec, "float32")
    assert not passes(simulated(x, near, spec, "float32", freq_dtype=ml_dtypes.bfloat16), x, near, spec, "float32")


def test_tail_must_be_exact() -> None:
    spec = PRESETS["phi-2"]
    x, pos = case(spec, "float32", 0, 100)
    got = reference.apply(x, pos, spec)
    got[..., spec.rotary_dim + 3] += 1e-7
    assert not passes(got, x, pos, spec, "float32")
