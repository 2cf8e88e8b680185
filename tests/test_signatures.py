"""``rope-suite check FILE.py:FUNC --signature NAME``: bare functions in the common calling
conventions, wrapped into plug-ins; and the seed snippets registered as rows under them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rope_suite.conformance import reference
from rope_suite.conformance.cases import Case
from rope_suite.conformance.spec import PARTS
from rope_suite.implementations.thirdparty import seed_snippets
from rope_suite.implementations.thirdparty.signatures import SIGNATURES, token_lanes

from conftest import PLUGINS, need, rope_suite

FUNCTIONS = str(PLUGINS / "rope_functions.py")
SEEDS = seed_snippets.folder()
needs_seeds = pytest.mark.skipif(SEEDS is None, reason="the seed snippets (../shared/seed-snippets) are not here")


@pytest.mark.parametrize("function, signature, cases", [
    ("apply_rotary_emb", "x-cos-sin", "agreement/llama2-7b/float32 or agreement/phi-2/float32"),
    ("apply_rotary_emb_gptj", "x-cos-sin-interleaved", "agreement/gpt-j-6b/float32"),
    ("apply_rotary_pos_emb", "qk-cos-sin", "agreement/qwen2.5-7b-yarn/float32 or fused_qk/llama2-7b/float32"),
    ("apply_rotary_emb_complex", "x-freqs-cis", "agreement/interleaved-full/float64"),
    ("rope_seq_dim", "x-seq-dim", "agreement/llama2-7b/float32 or agreement/partial-one-pair/float64"),
])
def test_a_correct_function_under_its_signature_is_conformant(tmp_path: Path, function: str, signature: str,
                                                               cases: str) -> None:
    need("torch")
    proc = rope_suite("check", f"{FUNCTIONS}:{function}", "--signature", signature, "--json", "r.json", "-k", cases,
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["framework"] == "torch" and report["verdict"] == "conformant"
    assert report["summary"]["passed"] >= 1 and report["summary"]["failed"] == 0


def test_a_broken_function_fails_with_a_pinpointed_mismatch(tmp_path: Path) -> None:
    need("torch")
    proc = rope_suite("check", f"{FUNCTIONS}:apply_rotary_emb_sign_flipped", "--signature", "x-cos-sin",
                      "-k", "agreement/llama2-7b/float32/per_row", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "worst: x[" in proc.stdout and "vs allowed" in proc.stdout
    assert "signature='x-cos-sin'" in proc.stdout  # the reproduction loads it under its signature


def test_signature_usage_errors_name_the_choices(tmp_path: Path) -> None:
    proc = rope_suite("check", f"{FUNCTIONS}:apply_rotary_emb", "--signature", "x-sin-cos", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--signature 'x-sin-cos' is invalid: allowed " + ", ".join(SIGNATURES) in proc.stderr
    proc = rope_suite("check", f"{FUNCTIONS}:apply_rotary_emb", "-k", "agreement/llama2-7b/float32/per_row",
                      cwd=tmp_path)
    assert proc.returncode == 2
    assert "a bare function, not a plug-in: name its calling convention with --signature NAME" in proc.stdout
    assert all(name in proc.stdout for name in SIGNATURES)


def test_every_signature_states_what_the_suite_supplies() -> None:
    need("torch")
    for sig in SIGNATURES.values():
        plugin = sig.wrap(lambda *args: None, sig, "torch")
        assert set(plugin.supplied) <= set(PARTS), sig.name
        assert sig.call and sig.supplies and sig.expresses
    assert SIGNATURES["x-seq-dim"].wrap(None, SIGNATURES["x-seq-dim"], "torch").supplied == {}


@pytest.mark.parametrize("pattern", ["per_row", "packed_restart", "decode_offset_per_row"])
def test_token_lanes_put_each_token_at_its_position(pattern: str) -> None:
    case = Case("llama2-7b", "float32", pattern, batch=3, seq=8, heads=2)
    positions = case.inputs()[1]
    rows, slot, length = token_lanes(positions, heads=2)
    assert length == positions.max() + 1
    flat = rows.reshape(-1)
    assert np.array_equal(flat[slot], np.arange(positions.size * 2))  # every token read back from its own slot
    token_position = np.repeat(positions.reshape(-1), 2)
    assert np.array_equal(slot % length, token_position)  # ... which is its position in its row


@needs_seeds
def test_seed_000_is_checked_under_x_cos_sin(tmp_path: Path) -> None:
    need("torch")
    proc = rope_suite("check", "seed-000-apply-rotary-emb", "--json", "r.json",
                      "-k", "agreement/llama2-7b/float32/per_row or agreement/phi-2/float32", cwd=tmp_path)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] in ("conformant", "non-conformant"), proc.stdout[-3000:]
    assert report["summary"]["passed"] + report["summary"]["failed"] >= 2


@needs_seeds
def test_seed_001_is_non_conformant_with_its_shape_error_and_not_a_rotation(tmp_path: Path) -> None:
    need("torch")
    proc = rope_suite("check", "seed-001-apply-rotary-pos-emb", "--json", "r.json",
                      "-k", "agreement/llama2-7b/float32/per_row or agreement/partial-one-pair/float32", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "non-conformant"
    by_spec = {c["spec_name"] if "spec_name" in c else c["id"].split("/")[1]: c for c in report["checks"]}
    crash = by_spec["llama2-7b"]
    assert crash["reason"].startswith("seed-001-apply-rotary-pos-emb: rope() raised RuntimeError: The size of "
                                      "tensor a (64) must match the size of tensor b (128)")
    one_pair = by_spec["partial-one-pair"]  # dim 2: the shapes broadcast, and the value is wrong
    assert one_pair["status"] == "failed" and "worst: x[" in one_pair["reason"]
    deviations = seed_snippets.SEED_001_DEVIATIONS
    assert [d.name for d in deviations if d.matches(crash)] == ["shape-error"]
    assert [d.name for d in deviations if d.matches(one_pair)] == ["not-a-rotation"]


def test_seed_rows_are_skipped_with_the_reason_when_the_snippets_are_absent(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, seed_snippets.ENV: str(empty)}
    proc = rope_suite("check", "seed-000-apply-rotary-emb", "--json", "r.json", "-k", "agreement/llama2-7b/float32/per_row",
                      cwd=tmp_path, env=env)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["skipped"] >= 1 and report["summary"]["passed"] == 0, proc.stdout[-2000:]
    assert all(c["reason"] == f"seed-000-apply-rotary-emb: seed snippets not found: looked in {empty} "
                              f"(set {seed_snippets.ENV} to the folder)" for c in report["checks"])


@needs_seeds
@pytest.mark.parametrize("row, spec_name", [("seed-000-apply-rotary-emb", "phi-2"),
                                            ("seed-001-apply-rotary-pos-emb", "partial-one-pair")])
def test_a_seed_reproduction_calls_the_snippet_as_the_suite_does(row: str, spec_name: str) -> None:
    torch = need("torch")
    plugin = getattr(seed_snippets, {"seed-000-apply-rotary-emb": "SEED_000"}.get(row, "SEED_001"))
    case = Case(spec_name, "float32")
    x, positions = case.inputs()
    source = plugin.reproduction(case.spec, "float32")
    assert "rope_suite" not in source
    namespace: dict = {}
    exec(compile(source, "reproduction", "exec"), namespace)
    got = namespace["make"]()(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(positions))
    wrapped = plugin.rope(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(positions), case.spec)
    assert torch.equal(got, wrapped)
    assert (np.abs(got.double().numpy() - reference.apply(x, positions, case.spec)).max() < 1e-5) == (row.startswith("seed-000"))
