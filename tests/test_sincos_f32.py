"""jax-jit's and tensorflow-xla's vectorisable float32 cos/sin (``_sincos_f32``: Cody-Waite reduction
by pi/2, Cephes polynomials), compiled by XLA as the implementations run it, against float64
NumPy cos/sin of the same float32 angles: llama angles (positions 0..2^20 in steps, base 10000 and
500000, head_dim 128) and random angles up to 2^20. Measured when written: at most 1.31e-7 absolute
(float32 libm ~7e-8); the bound 1.5e-7 is about 2.5 units of roundoff of 1, a small fraction of what
the accuracy model allows (4 x (2 u |phi| + 2 u) with u = 2^-24, at least 4.8e-7). Also: the
compiled code has no cos/sin left (XLA CPU would call scalar libm), and zero angle is exact."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need

BOUND = 1.5e-7


def angles() -> np.ndarray:
    """float32 angles: llama's (every 7th position below 2^20, both bases) and random ones."""
    positions = np.arange(0, 1 << 20, 7, dtype=np.float32)[:, None]
    llama = [(positions * (1.0 / base ** (np.arange(0, 128, 2) / 128)).astype(np.float32)).ravel()
             for base in (10000.0, 500000.0)]
    rng = np.random.default_rng(0)
    random = [rng.uniform(-hi, hi, 200_000).astype(np.float32) for hi in (1.0, 2.0**10, 2.0**17, 2.0**20)]
    return np.concatenate([*llama, *random, np.float32([0.0, -0.0])])


def compiled(framework: str):
    """(cos, sin) of float32 NumPy angles through the module's _sincos_f32 under XLA, and the HLO text."""
    if framework == "jax":
        jax, jnp = need("jax"), need("jax.numpy")
        from rope_suite.implementations import jax_rope

        fn = jax.jit(jax_rope._sincos_f32)
        return (lambda phi: tuple(np.asarray(t) for t in fn(jnp.asarray(phi))),
                lambda phi: fn.lower(jnp.asarray(phi)).compile().as_text())
    tf = need("tensorflow")
    from rope_suite.implementations import tf_rope

    fn = tf.function(tf_rope._sincos_f32, jit_compile=True)
    return (lambda phi: tuple(t.numpy() for t in fn(tf.constant(phi))),
            lambda phi: fn.experimental_get_compiler_ir(tf.constant(phi))(stage="optimized_hlo"))


@pytest.mark.parametrize("framework", ["jax", "tensorflow"])
def test_sincos_f32_within_bound_of_float64(framework: str) -> None:
    run, _ = compiled(framework)
    phi = angles()
    cos, sin = run(phi)
    assert cos.dtype == sin.dtype == np.float32
    exact = phi.astype(np.float64)
    err_cos, err_sin = np.abs(cos - np.cos(exact)), np.abs(sin - np.sin(exact))
    worst = int(np.argmax(np.maximum(err_cos, err_sin)))
    assert max(err_cos.max(), err_sin.max()) <= BOUND, (
        f"phi={phi[worst]!r}: cos err {err_cos[worst]:.3g}, sin err {err_sin[worst]:.3g} > {BOUND}")
    assert cos[-2:].tolist() == [1.0, 1.0] and sin[-2:].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("framework", ["jax", "tensorflow"])
def test_sincos_f32_compiles_without_cos_sin(framework: str) -> None:
    _, hlo = compiled(framework)
    text = hlo(np.ones((64, 64), np.float32))
    assert " cosine(" not in text and " sine(" not in text


@pytest.mark.parametrize("framework", ["jax", "tensorflow"])
def test_sincos_f32_bounded_at_huge_angles(framework: str) -> None:
    """Past ~2^22 the reduction's products round; the results must still be finite and in [-1, 1]
    (the precision-horizon probes reach position 2^30 + 1: unbounded values there overflowed float16)."""
    run, _ = compiled(framework)
    phi = np.concatenate([(np.float32(2.0) ** np.arange(20, 31, dtype=np.float32))[:, None]
                          * np.float32([1.0, 1.1, 1.3, 1.7, -1.9])]).ravel()
    phi = np.concatenate([phi, np.random.default_rng(1).uniform(-2.0**31, 2.0**31, 100_000).astype(np.float32)])
    cos, sin = run(phi)
    assert np.all(np.abs(cos) <= 1.0) and np.all(np.abs(sin) <= 1.0)
