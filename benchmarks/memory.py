"""Peak memory of one call: the bytes the framework allocated during it, at their peak
(the output included, the inputs excluded), from each framework's own allocator statistics.

| framework / device | how |
|---|---|
| torch, CUDA | ``torch.cuda.reset_peak_memory_stats`` / ``max_memory_allocated`` |
| torch, CPU | the profiler's allocation records (``profile_memory=True``), summed in time order |
| numpy | ``tracemalloc`` (NumPy reports its data buffers to it) |
| tensorflow | ``tf.config.experimental.reset_memory_stats`` / ``get_memory_info`` |
| jax, GPU | the device's ``memory_stats()`` (peak since start: an upper bound) |
| jax, CPU | not exposed (``memory_stats()`` is None): reported as unavailable |
"""

from __future__ import annotations

import importlib
import tracemalloc
from collections.abc import Callable
from typing import Any


def peak_memory(framework: str, device: str, call: Callable[[], Any]) -> tuple[int | None, str]:
    """(peak bytes or None, the method or why there is none) for one ``call()``."""
    measure = {"numpy": _numpy, "torch": _torch_cuda if device == "cuda" else _torch_cpu,
               "tensorflow": _tensorflow, "jax": _jax}.get(framework)
    if measure is None:
        return None, f"no allocator statistics for {framework}"
    try:
        return measure(call, device)
    except Exception as err:  # a statistic that cannot be read is reported, never fatal
        return None, f"unavailable: {type(err).__name__}: {err}"


def _numpy(call: Callable[[], Any], device: str) -> tuple[int, str]:
    tracemalloc.start()
    try:
        out = call()  # noqa: F841 (held: the output counts)
        return tracemalloc.get_traced_memory()[1], "tracemalloc"
    finally:
        tracemalloc.stop()


def _torch_cuda(call: Callable[[], Any], device: str) -> tuple[int, str]:
    torch = importlib.import_module("torch")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = call()  # noqa: F841
    return torch.cuda.max_memory_allocated() - before, "torch.cuda.max_memory_allocated"


def _torch_cpu(call: Callable[[], Any], device: str) -> tuple[int, str]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = call()  # noqa: F841
    records = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                     if e.name() == "[memory]")
    current = peak = 0
    for _, nbytes in records:  # allocations positive, frees negative
        current += nbytes
        peak = max(peak, current)
    return peak, "torch.profiler allocation records"


def _tensorflow(call: Callable[[], Any], device: str) -> tuple[int, str]:
    tf = importlib.import_module("tensorflow")
    name = "GPU:0" if device == "cuda" else "CPU:0"
    tf.config.experimental.reset_memory_stats(name)
    before = tf.config.experimental.get_memory_info(name)["current"]
    out = call()  # noqa: F841
    return tf.config.experimental.get_memory_info(name)["peak"] - before, "tf.config.experimental.get_memory_info"


def _jax(call: Callable[[], Any], device: str) -> tuple[int | None, str]:
    jax = importlib.import_module("jax")
    stats = jax.devices()[0].memory_stats()
    if not stats:
        return None, f"not exposed by jax on {jax.devices()[0].platform}"
    before = stats.get("bytes_in_use", 0)
    out = call()  # noqa: F841
    return jax.devices()[0].memory_stats().get("peak_bytes_in_use", 0) - before, "jax memory_stats (peak since start)"
