"""The report's figures (matplotlib, Agg): each readable on its own, with a title, axis units
and a legend. Every function returns PNG bytes."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

from rope_suite.conformance.frameworks import FLOAT_DTYPES

KIND_COLOURS = {"first-party": "#1f77b4", "third-party": "#ff7f0e", "noop": "#7f7f7f", "plug-in": "#2ca02c"}


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), dpi=100)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def throughput_vs_length(rows: list[dict[str, Any]], title: str) -> bytes:
    """GB/s against sequence length, one line per implementation, the copy bandwidth of each
    framework dashed. ``rows``: ok rows of one machine, dtype, direction and mode, batch-1 series."""
    fig = _figure(9, 5.5)
    ax = fig.add_subplot()
    by_impl: dict[str, list[tuple[int, float]]] = defaultdict(list)
    copies: dict[str, dict[int, float]] = defaultdict(dict)
    kinds = {}
    for r in rows:
        by_impl[r["implementation"]].append((r["seq"], r["gbps"]))
        kinds[r["implementation"]] = r["kind"]
        if r.get("copy_gbps"):
            copies[r["framework"]][r["seq"]] = max(copies[r["framework"]].get(r["seq"], 0.0), r["copy_gbps"])
    markers = "osD^v<>phX*"
    import matplotlib

    colours = matplotlib.colormaps["tab20"].colors
    for i, (impl, points) in enumerate(sorted(by_impl.items())):
        if kinds[impl] == "noop":
            continue  # a no-op moves no bytes: its "GB/s" is not a throughput
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=markers[i % len(markers)],
                color=colours[i % len(colours)], linestyle="-" if kinds[impl] == "first-party" else ":", label=impl)
    for framework, points in sorted(copies.items()):
        seqs = sorted(points)
        ax.plot(seqs, [points[s] for s in seqs], color="black", linestyle="--", linewidth=1, alpha=0.6)
        ax.annotate(f"copy ({framework})", (seqs[-1], points[seqs[-1]]), fontsize=7, alpha=0.8, ha="right",
                    xytext=(-2, 3), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length (tokens, batch 1)")
    ax.set_ylabel("achieved bandwidth (GB/s, bytes that must move / median time)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title_fontsize=7,
              title="solid: first-party\ndotted: third-party\ndashed: copy")
    return _png(fig)


def roofline_bars(rows: list[dict[str, Any]], title: str) -> bytes:
    """Horizontal bars: each implementation's fraction of its framework's copy bandwidth on one case."""
    rows = sorted((r for r in rows if r.get("fraction_of_copy") is not None), key=lambda r: r["fraction_of_copy"])
    fig = _figure(9, 0.8 + 0.28 * max(len(rows), 1))
    ax = fig.add_subplot()
    labels = [r["implementation"] for r in rows]
    values = [100 * r["fraction_of_copy"] for r in rows]
    ax.barh(labels, values, color=[KIND_COLOURS.get(r["kind"], "#999999") for r in rows])
    for y, (value, r) in enumerate(zip(values, rows)):
        ax.annotate(f"{value:.0f}%  ({r['gbps']:.1f} GB/s)", (value, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=7)
    ax.axvline(100, color="black", linestyle="--", linewidth=1)
    ax.axvline(80, color="green", linestyle=":", linewidth=1)
    ax.set_xlabel("fraction of the same framework's out-of-place copy bandwidth (%); dotted: 80% target")
    ax.set_title(title)
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=k) for k, c in KIND_COLOURS.items() if any(r["kind"] == k for r in rows)]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_xlim(0, max([110.0, *[v * 1.25 for v in values]]))
    return _png(fig)


def precision_horizons(horizons: dict[str, dict[str, float]], title: str) -> bytes:
    """Grouped bars: log2 of the largest accurate position per implementation, one bar per dtype."""
    import numpy as np

    impls = sorted(horizons)
    dtypes = [d for d in FLOAT_DTYPES if any(d in horizons[i] for i in impls)]
    fig = _figure(10, 5)
    ax = fig.add_subplot()
    width = 0.8 / max(len(dtypes), 1)
    x = np.arange(len(impls))
    for j, dtype in enumerate(dtypes):
        values = [np.log2(horizons[i][dtype]) if horizons[i].get(dtype, 0) > 0 else 0 for i in impls]
        ax.bar(x + j * width, values, width, label=dtype)
    ax.set_xticks(x + width * (len(dtypes) - 1) / 2, impls, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("log2(largest position with error < 1% of max|x|)")
    ax.set_title(title)
    ax.legend(title="dtype", fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return _png(fig)
