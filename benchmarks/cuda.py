"""CUDA timing for PyTorch tensors: CUDA events with the L2 cache flushed, and CUDA-graph replay.

``event_times`` follows ``triton.testing.do_bench``: before every call a buffer larger than
the L2 cache is zeroed, then the call is bracketed by two CUDA events; the flush is outside
the events. ``graph_times`` captures ``GRAPH_CALLS`` calls into one CUDA graph (after
warm-up on a side stream, as the PyTorch docs prescribe) and times replays with events: the
launch overhead is gone, which is the figure a serving engine that uses graphs sees. A call
that does host work (a host-to-device copy of a pageable array, ``.item()``) cannot be
captured; the error is reported as the reason.

Written for a GPU machine; on a CPU-only machine nothing here runs (the callers check the device).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GRAPH_CALLS = 10
L2_FLUSH_BYTES = 256 << 20  # larger than any GPU's L2 (H100: 50 MiB)


def event_times(call: Callable[[], Any], rounds: int) -> tuple[list[float], int]:
    """Seconds of each of ``rounds`` calls, each timed with CUDA events after an L2 flush, and
    the calls per round (1)."""
    import torch

    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device="cuda")
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(rounds)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(rounds)]
    for start, end in zip(starts, ends):
        flush.zero_()
        start.record()
        call()
        end.record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) / 1e3 for s, e in zip(starts, ends)], 1


def graph_times(call: Callable[[], Any], rounds: int) -> tuple[list[float], int]:
    """Seconds of each of ``rounds`` replays of a CUDA graph holding GRAPH_CALLS calls, and
    GRAPH_CALLS."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            call()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(GRAPH_CALLS):
            call()
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device="cuda")
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(rounds)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(rounds)]
    for start, end in zip(starts, ends):
        flush.zero_()
        start.record()
        graph.replay()
        end.record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) / 1e3 for s, e in zip(starts, ends)], GRAPH_CALLS
