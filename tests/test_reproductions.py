"""Each third-party adapter's ``reproduction(spec, dtype)`` gives what its ``rope`` gives, bit for bit.

The source is self-contained (it must not import rope_suite): exec it, call ``make()`` once,
and compare ``rope(x, positions)`` with the adapter's on fresh copies of the same inputs (Liger
writes into x). A second call on the same ``rope`` checks that the kept module still agrees.
"""

from __future__ import annotations

import numpy as np
import pytest

from rope_suite.conformance.cases import SPECS
from rope_suite.implementations.registry import REGISTRY

# per adapter: a plain spec, a scaling type, a partial spec (where the adapter supports them)
CASES: dict[str, tuple[str, ...]] = {
    "hf-llama": ("llama2-7b", "llama3.1-8b", "linear-x4"),
    "hf-gpt-neox": ("llama2-7b", "qwen2.5-7b-yarn", "gpt-neox-20b"),
    "hf-phi": ("llama2-7b", "yarn-mscale", "gpt-neox-20b"),
    "hf-gptj": ("interleaved-full", "gpt-j-6b"),
    "liger": ("llama2-7b", "llama3.1-8b", "gpt-neox-20b", "gpt-j-6b"),
    "liger-mrope": ("qwen2-vl",),
    "onnx-reference": ("llama2-7b", "qwen2.5-7b-yarn", "gpt-j-6b", "qwen2-vl"),
    "onnxruntime": ("llama2-7b", "linear-x4", "gpt-neox-20b", "sam2"),
    "ultralytics-sam2": ("sam2",),
}


def _inputs(spec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (2, 5, 3) if spec.n_axes == 1 else (2, 5, 3, spec.n_axes)
    return rng.standard_normal((2, 5, 3, spec.head_dim)).astype(np.float32), rng.integers(0, 3000, shape[:2] + shape[3:])


@pytest.mark.parametrize(("name", "spec_name"), [(n, s) for n, specs in CASES.items() for s in specs])
def test_reproduction_equals_the_adapter(name: str, spec_name: str) -> None:
    impl = REGISTRY[name]
    if impl.missing():
        pytest.skip(f"{impl.missing()} is not installed")
    adapter, spec = impl.load(), SPECS[spec_name]
    source = adapter.reproduction(spec, "float32")
    assert source is not None, f"{name}.reproduction({spec_name}, float32) is None, but should be source"
    assert "rope_suite" not in source, f"{name}.reproduction({spec_name}) imports rope_suite"
    namespace: dict = {}
    exec(compile(source, f"<{name} reproduction>", "exec"), namespace)
    rope = namespace["make"]()
    if impl.framework == "torch":
        import torch
        native = torch.from_numpy
        same = torch.equal
    else:
        native, same = np.array, np.array_equal
    for seed in (0, 1):  # the second call goes through the kept module
        x, positions = _inputs(spec, seed)
        got, wanted = rope(native(x.copy()), native(positions)), adapter.rope(native(x.copy()), native(positions), spec)
        assert same(got, wanted), f"{name} on {spec_name}: reproduction's rope(x, positions) differs from the adapter's"


def test_reproduction_is_none_where_unsupported() -> None:
    impl = REGISTRY["hf-llama"]
    if impl.missing():
        pytest.skip(f"{impl.missing()} is not installed")
    assert impl.load().reproduction(SPECS["gpt-j-6b"], "float32") is None
