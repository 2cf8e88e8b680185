"""A plain JAX plug-in that claims float64: angles in float32, the result cast back to x's dtype."""

import jax.numpy as jnp

framework = "jax"


def supports(spec, dtype):
    return spec.multi_axis is None and spec.scaling is None and spec.convention == "half"


def rope(x, positions, spec):
    r = spec.rotary_dim
    theta = 1.0 / spec.base ** (jnp.arange(0, r, 2, dtype=jnp.float32) / r)
    phi = positions.astype(jnp.float32)[..., None, None] * theta
    cos, sin = jnp.cos(phi).astype(x.dtype), jnp.sin(phi).astype(x.dtype)
    a, b = x[..., : r // 2], x[..., r // 2: r]
    return jnp.concatenate([a * cos - b * sin, b * cos + a * sin, x[..., r:]], axis=-1)
