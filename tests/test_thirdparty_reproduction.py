"""A third-party adapter's ``reproduction(spec, dtype)`` is the adapter, for its library's
maintainers: the source, run on its own (it must not import rope_suite), builds once what a
user builds and returns ``rope(x, positions)``, and that function gives bit for bit what the
adapter's ``rope`` gives, call after call (so state the library keeps between calls, caches
included, is reproduced too). Compared on two calls with different positions, from a fresh
adapter object, so the reproduction cannot drift from the adapter.

Keras runs in a subprocess: the Keras backend is fixed per process, and keras-hub imports
TensorFlow, which cannot share a process with Triton.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from rope_suite.conformance.cases import Case

TORCH_CASES: list[tuple[str, str, str, str]] = [
    # (module under implementations.thirdparty, class and arguments, spec name, dtype)
    ("torchtune_rope", "TorchtuneRope(llama3=False)", "llama2-7b", "float32"),
    ("torchtune_rope", "TorchtuneRope(llama3=False)", "interleaved-full", "bfloat16"),
    ("torchtune_rope", "TorchtuneRope(llama3=True)", "llama3.1-8b", "float32"),
    ("rotary_embedding_torch_rope", "RotaryEmbeddingTorchRope()", "llama2-7b", "float16"),
    ("rotary_embedding_torch_rope", "RotaryEmbeddingTorchRope()", "gpt-j-6b", "float32"),
    ("rotary_embedding_torch_rope", "RotaryEmbeddingTorchRope()", "sam2", "float32"),
    ("rotary_embedding_torch_rope", "RotaryEmbeddingTorchRope()", "axial2d-half", "bfloat16"),
]
REQUIRES = {"torchtune_rope": ("torch", "torchtune", "torchao"),
            "rotary_embedding_torch_rope": ("torch", "rotary_embedding_torch")}
PATTERNS = ("offset", "per_row")  # two calls: the second meets what the first left behind


def make_from(source: str) -> Any:
    """``make()`` of a reproduction, exec'd in a namespace of its own."""
    assert "rope_suite" not in source, "a reproduction must not import rope_suite"
    namespace: dict[str, Any] = {"__name__": "reproduction"}
    exec(compile(source, "<reproduction>", "exec"), namespace)
    return namespace["make"]


def missing(*modules: str) -> str | None:
    return next((m for m in modules if importlib.util.find_spec(m) is None), None)


@pytest.mark.parametrize("module, adapter, spec_name, dtype", TORCH_CASES,
                         ids=[f"{m.removesuffix('_rope')}/{s}/{d}" for m, _, s, d in TORCH_CASES])
def test_torch_reproduction_is_the_adapter(module: str, adapter: str, spec_name: str, dtype: str) -> None:
    if absent := missing(*REQUIRES[module]):
        pytest.skip(f"{absent} is not installed")
    import torch

    namespace: dict[str, Any] = {}
    exec(f"from rope_suite.implementations.thirdparty.{module} import *\nobj = {adapter}", namespace)
    obj, spec = namespace["obj"], Case(spec_name, dtype).spec
    rope = make_from(obj.reproduction(spec, dtype))()
    for pattern in PATTERNS:
        x, positions = Case(spec_name, dtype, pattern).inputs()
        xt, pt = torch.tensor(x).to(getattr(torch, dtype)), torch.tensor(positions)
        want, got = obj.rope(xt, pt, spec), rope(xt.clone(), pt.clone())
        assert got.dtype == want.dtype and torch.equal(got, want), (
            f"{adapter} on {spec_name}/{dtype}/{pattern}: the reproduction differs from the adapter by up to "
            f"{(got.double() - want.double()).abs().max().item():.3g}")


KERAS_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from rope_suite.conformance.cases import Case
    from rope_suite.implementations.thirdparty import keras_hub_rope
    from rope_suite.implementations.thirdparty.keras_hub_rope import KerasHubRope, keras_for
    sys.path.insert(0, {tests!r})
    from test_thirdparty_reproduction import make_from

    keras = keras_for({backend!r})
    for llama3, spec_name, dtype in {cases!r}:
        obj = KerasHubRope({backend!r}, llama3=llama3)
        spec = Case(spec_name, dtype).spec
        rope = make_from(obj.reproduction(spec, dtype))()
        for pattern in {patterns!r}:
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
    if absent := missing("keras", "keras_hub", "torch"):
        pytest.skip(f"{absent} is not installed")
    script = KERAS_SCRIPT.format(tests=os.path.dirname(__file__), backend="torch", cases=KERAS_CASES,
                                 patterns=PATTERNS)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0 and "same" in done.stdout, done.stderr[-3000:]


def test_reproduction_has_no_suite_import() -> None:
    """make_from refuses a source that imports rope_suite (a reproduction is for the library's maintainers)."""
    with pytest.raises(AssertionError, match="must not import rope_suite"):
        make_from("import rope_suite\ndef make():\n    return None\n")
