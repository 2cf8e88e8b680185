"""Which cases each check runs, per profile.

``full`` runs agreement over every spec x every dtype and every position pattern, and the
other checks over a representative subset of specs; ``quick`` keeps every check, feature and
dtype but fewer specs and patterns. Each planned item has an id ``check/spec/dtype/pattern[...]``
that ``-k`` and the xfail/skip files match.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cases import BOUNDARY, REPRESENTATIVE, SPECS, Case
from .frameworks import FLOAT_DTYPES

PROFILES: tuple[str, ...] = ("quick", "full")
PARTIAL: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if spec.rotary_dim < spec.head_dim)


@dataclass(frozen=True)
class Planned:
    check: str
    case: Case

    @property
    def id(self) -> str:
        return f"{self.check}/{self.case.id}"


def _position_cases(specs: tuple[str, ...], patterns: tuple[str, ...]) -> list[Case]:
    shapes = {"decode_offset_per_row": dict(batch=4, seq=1), "packed_restart": dict(batch=3, seq=8)}
    return [Case(s, "float32", p, **shapes.get(p, {})) for s in specs for p in patterns]


def plan(profile: str = "full") -> list[Planned]:
    """Every (check, case) of ``profile``, in a stable order."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is invalid: allowed {', '.join(PROFILES)}")
    full = profile == "full"
    dtypes = FLOAT_DTYPES
    represent = REPRESENTATIVE if full else ("llama2-7b", "gpt-j-6b", "llama3.1-8b", "qwen2.5-7b-yarn",
                                             "dynamic-above", "qwen2-vl", "sam2")
    patterns = ("contiguous", "offset", "decode_offset_per_row", "packed_restart", "large_positions")
    items: list[Planned] = []
    add = lambda check, cases: items.extend(Planned(check, c) for c in cases)  # noqa: E731

    agreement_specs = SPECS if full else dict.fromkeys(represent + ("longrope-short", "ntk-x8", "linear-x4",
                                                                    "qwen3-vl", "yarn-mscale"))
    add("agreement", [Case(s, d) for s in agreement_specs if s not in BOUNDARY for d in dtypes])
    add("agreement", [Case(s, "float32", "contiguous", batch=1, seq=n) for s in BOUNDARY for n in (6, 7)])
    add("agreement", _position_cases(("llama2-7b", "gpt-j-6b", "dynamic-above", "qwen2-vl") if full
                                     else ("llama2-7b", "dynamic-above"), patterns))
    add("agreement", [Case("llama2-7b", "float32", pos_dtype="int32"), Case("sam2", "float32", pos_dtype="int32"),
                      Case("llama2-7b", "float32", batch=2, seq=4, heads=4)])  # heads == seq
    add("agreement", [Case("llama2-7b", d, "large_positions") for d in dtypes if d != "float32"])
    add("fused_qk", [Case(s, d) for s in represent for d in ("float32", "bfloat16")])
    add("relative_position", [Case(s, "float32", batch=3) for s in represent])
    add("pair_norms", [Case(s, d) for s in represent for d in ("float32", "bfloat16")])
    add("identity_at_zero", [Case(s, "float32") for s in represent])
    add("tail_passthrough", [Case(s, d) for s in PARTIAL for d in dtypes])
    add("stateless", [Case(s, "float32") for s in ("llama2-7b", "dynamic-above", "longrope-long", "qwen2-vl")])
    add("output_contract", [Case("llama2-7b", d) for d in dtypes] + [Case(s, "float32") for s in represent[1:]])
    add("gradient", [Case(s, d) for s in represent for d in ("float32", "float64")])
    add("precision_horizon", [Case("llama2-7b", d) for d in FLOAT_DTYPES])
    ids = [p.id for p in items]
    assert len(ids) == len(set(ids)), "planned ids must be unique"
    return items
