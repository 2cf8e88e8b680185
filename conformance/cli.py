"""The ``rope-suite`` command line.

Subcommands:
  presets           list the named model specs
  spec SPEC         validate a spec (a preset name or a JSON object) and print it
  run               the main job: every step that exists, in order (see ``STEPS``)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

import numpy as np

from . import reference
from .presets import PRESETS, preset
from .spec import RopeSpec


def parse_spec(text: str) -> RopeSpec:
    """A preset name, or a JSON object with RopeSpec fields (``scaling`` as HF's rope_scaling)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"spec is not valid JSON: {err}") from None
        return RopeSpec.from_dict(data)
    return preset(text)


def cmd_presets(_: argparse.Namespace) -> int:
    width = max(map(len, PRESETS))
    for name, spec in PRESETS.items():
        print(f"{name:<{width}}  {json.dumps(spec.to_dict())}")
    return 0


def cmd_spec(args: argparse.Namespace) -> int:
    spec = parse_spec(args.spec)
    print(json.dumps(spec.to_dict(), indent=2))
    print(f"attention_factor: {reference.attention_factor(spec)!r}")
    if not spec.sequence_dependent:
        print("inverse_frequencies:", np.array2string(reference.inverse_frequencies(spec), precision=6))
    return 0


def reference_self_check() -> int:
    """Rotate random data with every preset and confirm the two identities that need no oracle:
    position 0 is the identity and every rotated pair keeps its norm (times the attention factor)."""
    rng = np.random.default_rng(0)
    failures = 0
    for name, spec in PRESETS.items():
        axes = () if spec.n_axes == 1 else (spec.n_axes,)
        x = rng.standard_normal((2, 8, 2, spec.head_dim))
        pos = rng.integers(0, 1 << 16, size=(2, 8, *axes))
        y = reference.apply(x, pos, spec)
        first, second = reference.pair_channels(spec)
        gain = reference.attention_factor(spec)
        norm_err = np.max(np.abs(np.hypot(y[..., first], y[..., second])
                                 - gain * np.hypot(x[..., first], x[..., second])))
        zero = reference.apply(x, np.zeros_like(pos), spec)
        ok = norm_err < 1e-12 and (gain != 1 or np.array_equal(zero, x))
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} reference {name}: pair-norm error {norm_err:.1e}")
    return 1 if failures else 0


def conformance_of_installed() -> int:
    """Every registered implementation through every check (absent frameworks are skipped)."""
    import subprocess
    return subprocess.call([sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q",
                            "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"])


# The main job, in order. Later steps (benchmarks, the comparison report) join this list as
# they are built.
STEPS: list[tuple[str, Callable[[], int]]] = [
    ("reference self-check", reference_self_check),
    ("conformance of every installed implementation", conformance_of_installed),
]


def cmd_run(_: argparse.Namespace) -> int:
    status = 0
    for title, step in STEPS:
        print(f"== {title}")
        status = max(status, step())
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rope-suite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("presets", help="list the named model specs").set_defaults(func=cmd_presets)
    p = sub.add_parser("spec", help="validate and print a spec (preset name or JSON)")
    p.add_argument("spec")
    p.set_defaults(func=cmd_spec)
    sub.add_parser("run", help="the main job: every step that exists").set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"rope-suite: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
