"""Moving arrays between NumPy and the frameworks under test, and taking their gradients.

The suite builds every input in NumPy, converts it to the implementation's framework, calls,
and converts back. Frameworks are imported lazily, only when an implementation of theirs runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

FRAMEWORKS: tuple[str, ...] = ("numpy", "torch", "jax", "tensorflow")
FLOAT_DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
NUMPY_DTYPES: dict[str, Any] = {"float64": np.float64, "float32": np.float32, "float16": np.float16,
                                "bfloat16": ml_dtypes.bfloat16, "int32": np.int32, "int64": np.int64}

# Unit roundoff of each float dtype (half the distance from 1 to the next number).
UNIT_ROUNDOFF: dict[str, float] = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


class ConversionError(TypeError):
    """A value returned by an implementation is not an array of its framework."""


def round_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` and back to float64: the exact numbers an input in
    ``dtype`` holds, so the float64 reference sees the same input as the implementation."""
    return np.asarray(values).astype(NUMPY_DTYPES[dtype]).astype(np.float64)


def to_native(framework: str, array: np.ndarray, dtype: str, device: str = "cpu") -> Any:
    """``array`` as a ``framework`` array of ``dtype`` (a name from NUMPY_DTYPES)."""
    host = np.asarray(array).astype(NUMPY_DTYPES[dtype])
    if framework == "numpy":
        return host
    if framework == "torch":
        import torch
        if dtype == "bfloat16":  # torch cannot read ml_dtypes arrays
            return torch.from_numpy(np.asarray(array, np.float32)).to(device=device, dtype=torch.bfloat16)
        return torch.from_numpy(host.copy()).to(device)
    if framework == "jax":
        import jax.numpy as jnp
        native = jnp.asarray(host)
        if native.dtype != host.dtype:  # never a silent conversion (cannot_hold says why it happens)
            raise ValueError(f"jax holds this {dtype} input as {native.dtype}: {cannot_hold(framework, dtype)}")
        return native
    if framework == "tensorflow":
        import tensorflow as tf
        if dtype == "bfloat16":
            return tf.cast(tf.constant(np.asarray(array, np.float32)), tf.bfloat16)
        return tf.constant(host)
    raise ValueError(f"framework={framework!r} is invalid: allowed {', '.join(FRAMEWORKS)}")


def prepare(framework: str) -> None:
    """Set ``framework`` up to hold every dtype the suite passes, before the first case: JAX keeps
    float64 off unless x64 is enabled, and would turn float64 inputs into float32 without a word,
    so the check process enables it (an implementation then gets, and is judged on, real float64)."""
    if framework == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)


def cannot_hold(framework: str, dtype: str) -> str | None:
    """Why ``framework`` cannot hold a ``dtype`` input in this process (a skip reason), or None."""
    if framework == "jax" and dtype in ("float64", "int64"):
        import jax
        if not jax.config.jax_enable_x64:
            return (f"JAX's x64 mode is off in this process, so a {dtype} input would silently become "
                    f"{dtype.replace('64', '32')}")
    return None


def dtype_name(framework: str, value: Any) -> str:
    """The dtype of a native array as a name ("float32", "bfloat16", "int64", ...)."""
    if framework == "torch":
        return str(value.dtype).removeprefix("torch.")
    if framework == "tensorflow":
        return value.dtype.name
    return np.dtype(value.dtype).name


def is_native(framework: str, value: Any) -> bool:
    """Whether ``value`` is an array of ``framework`` (what an implementation must return)."""
    if framework == "numpy":
        return isinstance(value, np.ndarray)
    if framework == "torch":
        import torch
        return isinstance(value, torch.Tensor)
    if framework == "jax":
        import jax
        return isinstance(value, jax.Array)
    if framework == "tensorflow":
        import tensorflow as tf
        return isinstance(value, (tf.Tensor, tf.Variable))
    return False


def to_numpy(framework: str, value: Any) -> np.ndarray:
    """A native array as NumPy, floats widened to float64 (exactly: every dtype fits)."""
    if not is_native(framework, value):
        raise ConversionError(f"returned {type(value).__module__}.{type(value).__qualname__}, "
                              f"not a {framework} array")
    if framework == "torch":
        value = value.detach().cpu()
        value = value.double() if value.is_floating_point() else value
        return value.numpy()
    if framework == "tensorflow":
        import tensorflow as tf
        if value.dtype.is_floating:
            value = tf.cast(value, tf.float64)
        return value.numpy()
    out = np.asarray(value)
    return out.astype(np.float64) if out.dtype.kind == "f" or out.dtype == ml_dtypes.bfloat16 else out


def has_autodiff(framework: str) -> bool:
    return framework in ("torch", "jax", "tensorflow")


def vjp(framework: str, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> Any:
    """The vector-Jacobian product of ``fn`` at ``x`` with ``cotangent``, natively."""
    if framework == "torch":
        x = x.detach().clone().requires_grad_(True)
        out = fn(x)
        (grad,) = importlib.import_module("torch").autograd.grad(out, x, cotangent)
        return grad
    if framework == "jax":
        import jax
        _, pullback = jax.vjp(fn, x)
        return pullback(cotangent)[0]
    if framework == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(x)
        return tape.gradient(out, x, output_gradients=cotangent)
    raise ValueError(f"framework={framework!r} has no autodiff")


def synchronize(framework: str, value: Any, device: str = "cpu") -> Any:
    """Block until ``value`` (an array, or a list or tuple of them) is computed on ``device``: a
    timed call ends when its result exists, and an asynchronous error surfaces in the call that
    caused it."""
    if framework == "jax":
        return importlib.import_module("jax").block_until_ready(value)
    if framework == "torch" and (device == "cuda" or getattr(value, "is_cuda", False)):
        importlib.import_module("torch").cuda.synchronize()
    elif framework == "tensorflow":
        importlib.import_module("tensorflow").test.experimental.sync_devices()
    return value
