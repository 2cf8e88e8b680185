"""Named RoPE specs of real models.

Each value is read off the model's ``config.json`` on the Hugging Face Hub (or, for SAM 2,
Ultralytics' code), as cited on its line. ``PRESETS[name]`` is a :class:`RopeSpec`;
``preset(name)`` gives a clear error for an unknown name.
"""

from __future__ import annotations

from .spec import Axial2D, MRope, RopeSpec

PRESETS: dict[str, RopeSpec] = {
    # meta-llama/Llama-2-7b-hf: hidden 4096 / 32 heads, rope_theta 10000, no scaling.
    "llama2-7b": RopeSpec(head_dim=128, base=10000.0),
    # meta-llama/Llama-3.1-8B: rope_theta 500000; rope_scaling llama3, factor 8,
    # low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings 8192.
    "llama3.1-8b": RopeSpec(head_dim=128, base=500000.0, scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}),
    # mistralai/Mistral-7B-v0.1: hidden 4096 / 32 heads, rope_theta 10000.
    "mistral-7b": RopeSpec(head_dim=128, base=10000.0),
    # EleutherAI/gpt-neox-20b: hidden 6144 / 64 heads = 96, rotary_pct 0.25 -> 24, rotary_emb_base 10000.
    "gpt-neox-20b": RopeSpec(head_dim=96, rotary_dim=24, base=10000.0),
    # EleutherAI/gpt-j-6b: n_embd 4096 / n_head 16 = 256, rotary_dim 64, rotate_every_two (interleaved).
    "gpt-j-6b": RopeSpec(head_dim=256, rotary_dim=64, base=10000.0, convention="interleaved"),
    # microsoft/phi-2: hidden 2560 / 32 heads = 80, partial_rotary_factor 0.4 -> 32, rope_theta 10000.
    "phi-2": RopeSpec(head_dim=80, rotary_dim=32, base=10000.0),
    # Qwen/Qwen2-VL-7B-Instruct: hidden 3584 / 28 heads = 128, rope_theta 1e6,
    # rope_scaling {"type": "mrope", "mrope_section": [16, 24, 24]}.
    "qwen2-vl": RopeSpec(head_dim=128, base=1000000.0, multi_axis=MRope((16, 24, 24))),
    # Qwen/Qwen3-VL-8B-Instruct text config: head_dim 128, rope_theta 5e6,
    # mrope_section [24, 20, 20], mrope_interleaved true.
    "qwen3-vl": RopeSpec(head_dim=128, base=5000000.0, multi_axis=MRope((24, 20, 20), interleaved=True)),
    # Ultralytics SAM 2 memory attention (RoPEAttention): embedding 256, 1 head, rope_theta 10000,
    # compute_axial_cis(dim=256, ...) with complex (interleaved) pairs, x then y.
    "sam2": RopeSpec(head_dim=256, base=10000.0, convention="interleaved", multi_axis=Axial2D()),
    # codellama/CodeLlama-7b-hf: rope_theta 1e6 (a large base).
    "codellama-7b": RopeSpec(head_dim=128, base=1000000.0),
    # Qwen/Qwen2.5-7B-Instruct model card, long-context recipe: yarn factor 4,
    # original_max_position_embeddings 32768; rope_theta 1e6, head_dim 128.
    "qwen2.5-7b-yarn": RopeSpec(head_dim=128, base=1000000.0, scaling={
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}),
}


def preset(name: str) -> RopeSpec:
    """The preset called ``name``; a ValueError lists the known names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None
