"""The registry of implementations under test: one declarative record each.

The plug-in contract (README, "Writing a plug-in") is what every implementation object has:
  framework: "numpy" | "torch" | "jax" | "tensorflow"   (Triton kernels are "torch" with a device)
  rope(x, positions, spec) -> array                      x [batch, seq, heads, head_dim], native
  supports(spec, dtype) -> bool                          optional; dtype a name like "bfloat16"
  rope_qk(q, k, positions, spec) -> (q, k)               optional fused q+k
  device: "cpu" | "cuda"                                 optional, default "cpu"
Third-party adapters may add (none is required):
  supplied: dict[str, str]          a part of RoPE (spec.PARTS) -> who supplies it when the library does not
  deviations: tuple[Deviation, ...] the library's diagnosed deviations (conformance.deviations)
  reproduction(spec, dtype) -> str | None   self-contained source of ``make()``, which builds what a user
                                    builds for ``spec`` and returns ``rope(x, positions)`` calling the library
                                    exactly as ``rope`` does (native tensors; no rope_suite import)

A record says where to load that object from (``"module:attribute"``) and which modules it
needs (a missing one is a skip with the reason, never an import error at collection time).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any


@dataclass(frozen=True)
class Implementation:
    """One implementation under test.

    name: unique, kebab-case, shown in reports and case ids.
    target: ``"package.module:attribute"`` of the object honouring the plug-in contract.
    framework: the framework it is written in (what the suite converts inputs to).
    requires: modules that must be importable, else every case is skipped with the reason.
    available: optional, the reason it cannot run here or None (e.g. the seed snippets, which
    live outside the project); every case is skipped with that reason.
    first_party: written by this project (expected to pass everything it claims).
    summary: one line for ``rope-suite list`` and the reports.
    install: the command that installs what ``requires`` names (said when a module is missing).
    environment: the nox session whose own virtual environment provides the library, for one that
    ``rope-suite[all]`` does not install (its pins clash with the main environment's); "" otherwise.
    """

    name: str
    target: str
    framework: str
    requires: tuple[str, ...] = ()
    first_party: bool = True
    summary: str = ""
    tags: tuple[str, ...] = field(default=())
    install: str = 'pip install "rope-suite[all]"'
    available: Callable[[], str | None] | None = None
    environment: str = ""

    def missing(self) -> str | None:
        """The first required module that is not installed, or None."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return module
        return None

    def unavailable(self) -> str | None:
        """Why it cannot run here (a skip reason), or None: a required module that is not
        installed, else what its ``available`` check says (code outside the project not found)."""
        missing = self.missing()
        if missing:
            return f"{missing} is not installed"
        return self.available() if self.available is not None else None

    def elsewhere(self) -> str | None:
        """A skip reason for a library that runs in its own environment and is not installed here
        (the main environment's tests skip it; its nox session runs them); None otherwise."""
        if self.environment and self.unavailable():
            return f"runs in `nox -s {self.environment}`, its own environment"
        return None

    def load(self) -> Any:
        """Import and return the plug-in object."""
        module_name, _, attribute = self.target.partition(":")
        obj = importlib.import_module(module_name)
        return getattr(obj, attribute) if attribute else obj


FIRST_PARTY: tuple[Implementation, ...] = (
    Implementation("numpy", "rope_suite.implementations.numpy_rope:IMPLEMENTATION", "numpy",
                   requires=("ml_dtypes",), summary="vectorised NumPy, float32 angles"),
    Implementation("torch-eager", "rope_suite.implementations.torch_rope:EAGER", "torch", requires=("torch",),
                   summary="PyTorch eager"),
    Implementation("torch-compile", "rope_suite.implementations.torch_rope:COMPILED", "torch", requires=("torch",),
                   summary="PyTorch torch.compile"),
    Implementation("torch-cpp", "rope_suite.implementations.torch_cpp:IMPLEMENTATION", "torch", requires=("torch", "ninja"),
                   summary="PyTorch, rotation in a C++ CPU kernel (built when loaded)"),
    Implementation("jax-jit", "rope_suite.implementations.jax_rope:IMPLEMENTATION", "jax", requires=("jax",),
                   summary="JAX under jax.jit"),
    Implementation("tensorflow-xla", "rope_suite.implementations.tf_rope:IMPLEMENTATION", "tensorflow",
                   requires=("tensorflow",), summary="TensorFlow tf.function(jit_compile=True)"),
    Implementation("triton", "rope_suite.implementations.triton_rope:IMPLEMENTATION", "torch",
                   requires=("torch", "triton"),
                   summary="fused q+k Triton kernel, in-kernel cos/sin (interpreter on CPU)"),
    Implementation("triton-cache", "rope_suite.implementations.triton_rope:CACHED", "torch", requires=("torch", "triton"),
                   summary="the same Triton kernel reading a float32 cos/sin cache"),
)

_TORCH_HF = ("torch", "transformers")
_SEEDS = "rope_suite.implementations.thirdparty.seed_snippets"


def _seed_snippets_unavailable() -> str | None:
    return importlib.import_module(_SEEDS).unavailable()


THIRD_PARTY: tuple[Implementation, ...] = (
    Implementation("hf-llama", "rope_suite.implementations.thirdparty.hf_transformers:LLAMA", "torch", _TORCH_HF, first_party=False,
                   summary="HF transformers Llama: LlamaRotaryEmbedding + apply_rotary_pos_emb, every HF rope_type"),
    Implementation("hf-gpt-neox", "rope_suite.implementations.thirdparty.hf_transformers:GPT_NEOX", "torch", _TORCH_HF,
                   first_party=False, summary="HF transformers GPT-NeoX (partial rotary)"),
    Implementation("hf-phi", "rope_suite.implementations.thirdparty.hf_transformers:PHI", "torch", _TORCH_HF, first_party=False,
                   summary="HF transformers Phi (partial rotary, slice-then-concatenate)"),
    Implementation("hf-gptj", "rope_suite.implementations.thirdparty.hf_transformers:GPTJ", "torch", _TORCH_HF, first_party=False,
                   summary="HF transformers GPT-J (interleaved, rotate_every_two)"),
    Implementation("torchtune", "rope_suite.implementations.thirdparty.torchtune_rope:ROPE", "torch",
                   ("torch", "torchtune", "torchao"), first_party=False,
                   summary="torchtune RotaryPositionalEmbeddings"),
    Implementation("torchtune-llama3", "rope_suite.implementations.thirdparty.torchtune_rope:LLAMA3_SCALED", "torch",
                   ("torch", "torchtune", "torchao"), first_party=False, summary="torchtune Llama3ScaledRoPE"),
    Implementation("rotary-embedding-torch", "rope_suite.implementations.thirdparty.rotary_embedding_torch_rope:ROPE", "torch",
                   ("torch", "rotary_embedding_torch"), first_party=False,
                   summary="lucidrains rotary-embedding-torch RotaryEmbedding"),
    Implementation("onnx-reference", "rope_suite.implementations.thirdparty.onnx_rope:ONNX_REFERENCE", "numpy", ("onnx",),
                   first_party=False, summary="ONNX RotaryEmbedding-23 through onnx.reference"),
    Implementation("onnxruntime", "rope_suite.implementations.thirdparty.onnx_rope:ONNXRUNTIME", "numpy",
                   ("onnx", "onnxruntime"), first_party=False, summary="ONNX RotaryEmbedding-23 in onnxruntime (CPU)"),
    Implementation("onnxruntime-contrib", "rope_suite.implementations.thirdparty.onnxruntime_contrib_rope:ROTARY_EMBEDDING",
                   "numpy", ("onnx", "onnxruntime"), first_party=False,
                   summary="onnxruntime contrib com.microsoft.RotaryEmbedding (CPU kernel)"),
    Implementation("onnxruntime-contrib-mrope",
                   "rope_suite.implementations.thirdparty.onnxruntime_contrib_rope:MROTARY_EMBEDDING", "numpy",
                   ("onnx", "onnxruntime"), first_party=False,
                   summary="onnxruntime contrib com.microsoft.MRotaryEmbedding, M-RoPE sections (CPU kernel)"),
    Implementation("mlx", "rope_suite.implementations.thirdparty.mlx_rope:MLX", "numpy", ("mlx",), first_party=False,
                   summary="MLX mx.fast.rope (CPU build): its own base and linear scale, offsets per row",
                   install='pip install "mlx[cpu]"'),
    Implementation("mlx-freqs", "rope_suite.implementations.thirdparty.mlx_rope:MLX_FREQS", "numpy", ("mlx",),
                   first_party=False, summary="MLX mx.fast.rope fed freqs= periods for every scaling (as mlx-lm does)",
                   install='pip install "mlx[cpu]"'),
    *(Implementation(f"keras-hub-{backend}", f"rope_suite.implementations.thirdparty.keras_hub_rope:{backend.upper()}",
                     framework, ("keras", "keras_hub", module), first_party=False,
                     summary=f"keras-hub RotaryEmbedding under the {backend} Keras backend (own process)")
      for backend, framework, module in (("tensorflow", "tensorflow", "tensorflow"), ("jax", "jax", "jax"),
                                         ("torch", "torch", "torch"))),
    Implementation("keras-hub-llama3-torch", "rope_suite.implementations.thirdparty.keras_hub_rope:LLAMA3_TORCH", "torch",
                   ("keras", "keras_hub", "torch"), first_party=False,
                   summary="keras-hub LlamaRotaryEmbedding (Llama 3.1 scaling) under the torch Keras backend (own process)"),
    Implementation("liger", "rope_suite.implementations.thirdparty.liger_rope:LIGER", "torch",
                   ("torch", "triton", "liger_kernel", "transformers"), first_party=False,
                   summary="Liger-Kernel fused Triton RoPE fed HF's cos/sin (interpreter on CPU)"),
    Implementation("liger-mrope", "rope_suite.implementations.thirdparty.liger_rope:LIGER_MROPE", "torch",
                   ("torch", "triton", "liger_kernel", "transformers"), first_party=False,
                   summary="Liger-Kernel fused Triton M-RoPE (Qwen2-VL sections) fed HF's per-axis cos/sin"),
    Implementation("ultralytics-sam2", "rope_suite.implementations.thirdparty.ultralytics_sam2_rope:SAM2", "torch",
                   ("torch", "ultralytics"), first_party=False,
                   summary="Ultralytics SAM 2 axial RoPE (compute_axial_cis + apply_rotary_enc)",
                   # its dependencies pull torchvision, whose CUDA build would replace a CPU torch
                   install='pip install --no-deps "ultralytics==8.4.190"'),
    Implementation("ggml", "rope_suite.implementations.thirdparty.ggml_rope:GGML", "numpy", ("ggml",), first_party=False,
                   summary="llama.cpp's ggml: ggml_rope_ext / ggml_rope_multi on the CPU (ctypes, ggml-python)",
                   install='pip install "ggml-python==0.0.45"'),
    Implementation("ggml-freq-factors", "rope_suite.implementations.thirdparty.ggml_rope:GGML_FREQ_FACTORS", "numpy",
                   ("ggml",), first_party=False,
                   summary="ggml_rope_ext fed freq_factors computed as llama.cpp's converter does (llama3, longrope)",
                   install='pip install "ggml-python==0.0.45"'),
    Implementation("diffusers", "rope_suite.implementations.thirdparty.diffusers_rope:DIFFUSERS", "torch",
                   ("torch", "diffusers"), first_party=False,
                   summary="diffusers get_1d_rotary_pos_embed + apply_rotary_emb, real path (both pairings, "
                           "Stable Audio's partial rotary, linear_factor)",
                   # its dependencies are optional for these modules; --no-deps keeps the CPU torch
                   install='pip install --no-deps "diffusers==0.42.1"'),
    Implementation("diffusers-complex", "rope_suite.implementations.thirdparty.diffusers_rope:DIFFUSERS_COMPLEX", "torch",
                   ("torch", "diffusers"), first_party=False,
                   summary="diffusers get_1d_rotary_pos_embed + apply_rotary_emb, complex path (use_real=False, Lumina)",
                   install='pip install --no-deps "diffusers==0.42.1"'),
    Implementation("diffusers-flux", "rope_suite.implementations.thirdparty.diffusers_rope:DIFFUSERS_FLUX", "torch",
                   ("torch", "diffusers"), first_party=False,
                   summary="diffusers FLUX FluxPosEmbed(axes_dim) + apply_rotary_emb: 2D axial positions",
                   install='pip install --no-deps "diffusers==0.42.1"'),
    Implementation("timm", "rope_suite.implementations.thirdparty.timm_rope:TIMM", "torch", ("torch", "timm"),
                   first_party=False,
                   summary="timm RotaryEmbeddingCat + apply_rot_embed_cat (EVA-02 axial RoPE, both pairings)",
                   # timm's package imports torchvision, whose CUDA build would replace a CPU torch;
                   # the adapter loads timm/layers/pos_embed_sincos.py alone
                   install='pip install --no-deps "timm==1.0.31"'),
    Implementation("x-transformers", "rope_suite.implementations.thirdparty.x_transformers_rope:X_TRANSFORMERS", "torch",
                   ("torch", "x_transformers"), first_party=False,
                   summary="x-transformers RotaryEmbedding + apply_rotary_pos_emb (partial rotary, "
                           "interpolation_factor, base_rescale_factor)",
                   install='pip install "x-transformers==2.31.10"'),
    Implementation("megatron-core", "rope_suite.implementations.thirdparty.megatron_rope:MEGATRON", "torch",
                   ("torch", "megatron.core"), first_party=False,
                   summary="Megatron-Core RotaryEmbedding / YarnRotaryEmbedding / MultimodalRotaryEmbedding + "
                           "apply_rotary_pos_emb (unfused, CPU)",
                   install='pip install "megatron-core==0.16.1"'),
    Implementation("equinox", "rope_suite.implementations.thirdparty.equinox_rope:EQUINOX", "jax", ("jax", "equinox"),
                   first_party=False,
                   summary="Equinox eqx.nn.RotaryPositionalEmbedding (one head, positions = sequence index), vmapped",
                   install='pip install "equinox==0.13.8"'),
    Implementation("gemma", "rope_suite.implementations.thirdparty.gemma_rope:GEMMA", "jax", ("jax", "gemma"),
                   first_party=False, summary="Google DeepMind gemma gm.math.apply_rope (its file alone; linear scale_factor)",
                   # its dependencies (kauldron, flax, orbax, grain, ...) are not needed by apply_rope's file
                   install='pip install --no-deps "gemma==3.3.0"'),
    # litgpt's package __init__ imports Lightning Fabric; --no-deps keeps its pins off the shared torch
    Implementation("litgpt", "rope_suite.implementations.thirdparty.litgpt_rope:LITGPT", "torch",
                   ("torch", "litgpt", "lightning"), first_party=False,
                   summary="litgpt build_rope_cache + apply_rope / apply_rope_interleave (rope_adjustments scaling)",
                   install='pip install --no-deps "litgpt==0.5.13" && pip install lightning psutil'),
    Implementation("litgpt-condense", "rope_suite.implementations.thirdparty.litgpt_rope:LITGPT_CONDENSE", "torch",
                   ("torch", "litgpt", "lightning"), first_party=False,
                   summary="litgpt build_rope_cache with rope_condense_ratio (linear, integer factors)",
                   install='pip install --no-deps "litgpt==0.5.13" && pip install lightning psutil'),
    Implementation("llama-models", "rope_suite.implementations.thirdparty.llama_models_rope:LLAMA3", "torch",
                   ("torch", "llama_models", "fairscale"), first_party=False,
                   summary="Meta llama-models llama3: precompute_freqs_cis + apply_rotary_emb (complex, Llama 3.1 scaling)",
                   install='pip install --no-deps "llama-models==0.3.0" fairscale'),
    Implementation("llama-models-llama4", "rope_suite.implementations.thirdparty.llama_models_rope:LLAMA4", "torch",
                   ("torch", "llama_models", "fairscale"), first_party=False,
                   summary="Meta llama-models llama4: precompute_freqs_cis with scale_factor, high_freq_factor",
                   install='pip install --no-deps "llama-models==0.3.0" fairscale'),
    *(Implementation(name, f"rope_suite.implementations.thirdparty.torchtitan_rope:{attribute}", "torch",
                     ("torch", "torchtitan", "spmd_types", "tyro"), first_party=False, summary=summary,
                     install='pip install --no-deps "torchtitan==0.3.0" && pip install spmd_types tyro')
      for name, attribute, summary in (
          ("torchtitan", "COMPLEX", "torchtitan ComplexRoPE (complex freqs_cis, interleaved; llama and yarn scaling)"),
          ("torchtitan-cos-sin", "COS_SIN", "torchtitan CosSinRoPE (cat(cos, sin) cache, rotate-half; yarn scaling)"),
          ("torchtitan-mrope", "MROPE", "torchtitan Qwen3.5 MRoPE (interleaved M-RoPE sections over CosSinRoPE)"))),
    Implementation("vllm", "rope_suite.implementations.thirdparty.vllm_rope:VLLM", "torch", ("torch", "vllm"),
                   first_party=False,
                   summary="vLLM get_rope() layers (forward_native on the CPU): every rope_type, M-RoPE (own venv)",
                   # vllm pins its own torch and transformers: its own virtual environment (noxfile.py)
                   install='python3 -m nox -s vllm (pip install --no-deps "vllm==0.32.0" and its import-time '
                           'dependencies, in a virtual environment of its own)',
                   environment="vllm"),
)

# The code snippets of the documents this project was written from, under their signatures
# (implementations/thirdparty/seed_snippets.py). Third-party code, but kept out of the
# third-party group: they are findings about the documents, not adapters of a library.
SEED_SNIPPETS: tuple[Implementation, ...] = (
    Implementation("seed-000-apply-rotary-emb", f"{_SEEDS}:SEED_000", "torch", ("torch",), first_party=False,
                   summary="seed snippet apply_rotary_emb(x, cos, sin) under --signature x-cos-sin "
                           "(../shared/seed-snippets)", available=_seed_snippets_unavailable),
    Implementation("seed-001-apply-rotary-pos-emb", f"{_SEEDS}:SEED_001", "torch", ("torch",), first_party=False,
                   summary="seed snippet apply_rotary_pos_emb(x, seq_len, dim) under --signature x-seq-dim "
                           "(../shared/seed-snippets)", available=_seed_snippets_unavailable),
)

REGISTRY: dict[str, Implementation] = {impl.name: impl for impl in FIRST_PARTY + THIRD_PARTY + SEED_SNIPPETS}

# Names that select several implementations at once.
GROUPS: dict[str, tuple[str, ...]] = {
    "first-party": tuple(impl.name for impl in FIRST_PARTY),
    "third-party": tuple(impl.name for impl in THIRD_PARTY),
    "seed-snippets": tuple(impl.name for impl in SEED_SNIPPETS),
    "all": tuple(REGISTRY),
}

