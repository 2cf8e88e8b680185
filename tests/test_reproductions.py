"""Each third-party adapter's ``reproduction(spec, dtype)`` gives what its ``rope`` gives, bit for bit.

The source is self-contained (it must not import rope_suite): exec it, call ``make()`` once,
and compare ``rope(x, positions)`` with a fresh adapter's on fresh copies of the same inputs
(Liger writes into x). A second call on the same ``rope`` checks that the kept module, caches
included, still agrees, so the reproduction cannot drift from the adapter. Keras runs in a
subprocess: its backend is fixed per process, and keras-hub imports TensorFlow, which cannot
share a process with Triton.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

from rope_suite.conformance.cases import SPECS
from rope_suite.conformance.targets import Target
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
    "onnxruntime-contrib": ("llama2-7b", "qwen2.5-7b-yarn", "gpt-j-6b", "gpt-neox-20b"),
    "onnxruntime-contrib-mrope": ("qwen2-vl", "qwen3-vl"),
    "mlx": ("llama2-7b", "linear-x4", "gpt-j-6b", "gpt-neox-20b"),
    "mlx-freqs": ("llama3.1-8b", "qwen2.5-7b-yarn", "interleaved-full"),
    "ultralytics-sam2": ("sam2",),
    "torchtune": ("llama2-7b", "interleaved-full"),
    "torchtune-llama3": ("llama3.1-8b",),
    "rotary-embedding-torch": ("llama2-7b", "gpt-j-6b", "sam2", "axial2d-half"),
    "ggml": ("llama2-7b", "gpt-j-6b", "qwen2.5-7b-yarn", "yarn-mscale", "qwen2-vl", "qwen3-vl", "sam2"),
    "ggml-freq-factors": ("llama3.1-8b", "longrope-long", "longrope-short"),
    "diffusers": ("llama2-7b", "linear-x4", "gpt-neox-20b", "interleaved-full"),
    "diffusers-complex": ("llama2-7b", "linear-x4", "interleaved-full"),
    "diffusers-flux": ("sam2",),
    "timm": ("sam2", "axial2d-half"),
    "x-transformers": ("llama2-7b", "ntk-x8", "linear-x4", "gpt-neox-20b", "gpt-j-6b"),
    "megatron-core": ("llama2-7b", "llama3.1-8b", "qwen2.5-7b-yarn", "gpt-neox-20b", "gpt-j-6b", "qwen2-vl"),
    "equinox": ("llama2-7b", "interleaved-full"),
    "gemma": ("llama2-7b", "linear-x4", "interleaved-full"),
    "litgpt": ("llama2-7b", "llama3.1-8b", "qwen2.5-7b-yarn", "gpt-neox-20b", "gpt-j-6b"),
    "litgpt-condense": ("linear-x4",),
    "llama-models": ("interleaved-full", "llama3.1-8b", "llama2-7b"),
    "llama-models-llama4": ("llama3.1-8b", "interleaved-full"),
    "torchtitan": ("interleaved-full", "llama3.1-8b", "yarn-mscale", "gpt-j-6b", "llama2-7b"),
    "torchtitan-cos-sin": ("llama2-7b", "yarn-mscale", "gpt-neox-20b", "gpt-j-6b"),
    "torchtitan-mrope": ("qwen3-vl",),
    "vllm": ("llama2-7b", "linear-x4", "qwen2.5-7b-yarn", "longrope-long", "gpt-neox-20b", "gpt-j-6b", "qwen2-vl",
             "qwen3-vl"),
}


def make_from(source: str) -> Any:
    """``make()`` of a reproduction, exec'd in a namespace of its own."""
    assert "rope_suite" not in source, "a reproduction must not import rope_suite"
    namespace: dict[str, Any] = {"__name__": "reproduction"}
    exec(compile(source, "<reproduction>", "exec"), namespace)
    return namespace["make"]


def _inputs(spec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (2, 5, 3) if spec.n_axes == 1 else (2, 5, 3, spec.n_axes)
    return rng.standard_normal((2, 5, 3, spec.head_dim)).astype(np.float32), rng.integers(0, 3000, shape[:2] + shape[3:])


@pytest.mark.parametrize(("name", "spec_name"), [(n, s) for n, specs in CASES.items() for s in specs])
def test_reproduction_equals_the_adapter(name: str, spec_name: str) -> None:
    impl = REGISTRY[name]
    if impl.elsewhere():  # its nox session runs it, with the library installed
        pytest.skip(impl.elsewhere())
    if impl.missing():
        pytest.skip(f"{impl.missing()} is not installed")
    adapter, spec = Target(name, impl).load_fresh(), SPECS[spec_name]
    source = adapter.reproduction(spec, "float32")
    assert source is not None, f"{name}.reproduction({spec_name}, float32) is None, but should be source"
    rope = make_from(source)()
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


KERAS_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from rope_suite.conformance.cases import Case
    from rope_suite.implementations.thirdparty import keras_hub_rope
    from rope_suite.implementations.thirdparty.keras_hub_rope import KerasHubRope, keras_for
    sys.path.insert(0, {tests!r})
    from test_reproductions import make_from

    keras = keras_for({backend!r})
    for llama3, spec_name, dtype in {cases!r}:
        obj = KerasHubRope({backend!r}, llama3=llama3)
        spec = Case(spec_name, dtype).spec
        rope = make_from(obj.reproduction(spec, dtype))()
        for pattern in ("offset", "per_row"):  # the second call meets what the first left behind
            x, positions = Case(spec_name, dtype, pattern).inputs()
            xk = keras.ops.cast(keras.ops.convert_to_tensor(x), dtype)
            pk = keras.ops.convert_to_tensor(positions)
            want = keras.ops.convert_to_numpy(keras.ops.cast(obj.rope(xk, pk, spec), "float64"))
            got = keras.ops.convert_to_numpy(keras.ops.cast(rope(xk, pk), "float64"))
            assert np.array_equal(got, want), f"{{spec_name}}/{{dtype}}/{{pattern}}: differs by {{np.abs(got - want).max()}}"
    print("same")
""")
KERAS_CASES = [(False, "llama2-7b", "float32"), (False, "gpt-j-6b", "bfloat16"), (False, "dynamic-above", "float32"),
               (True, "llama3.1-8b", "float32")]


def test_keras_hub_reproduction_is_the_adapter() -> None:
    """The keras-hub adapters under the torch backend (the layers and the rotate() around them
    are the same Keras code under every backend)."""
    if absent := next((m for m in ("keras", "keras_hub", "torch") if importlib.util.find_spec(m) is None), None):
        pytest.skip(f"{absent} is not installed")
    script = KERAS_SCRIPT.format(tests=os.path.dirname(__file__), backend="torch", cases=KERAS_CASES)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0 and "same" in done.stdout, done.stderr[-3000:]


def test_reproduction_has_no_suite_import() -> None:
    """make_from refuses a source that imports rope_suite (a reproduction is for the library's maintainers)."""
    with pytest.raises(AssertionError, match="must not import rope_suite"):
        make_from("import rope_suite\ndef make():\n    return None\n")
