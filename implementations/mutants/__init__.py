"""The mutation catalogue: correct PyTorch RoPE plug-ins, each with ONE real bug planted.

Every mutant is :class:`~rope_suite.implementations.mutants._base.TorchRope` with one method overridden
(the line marked ``# BUG:``) and reproduces a bug found in a public issue tracker, cited in
its module docstring and in its record below. The catalogue proves the checks work: every
mutant must fail the conformance suite (``tests/test_mutants.py`` runs each one), and
``caught_by`` records which checks fail on it.

    pytest --pyargs rope_suite.conformance --impl implementations.mutants.rotation_sign_flipped --profile quick

``MUTANTS`` maps each name to its plug-in target; ``CATALOGUE`` has the records.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Mutant", "CATALOGUE", "MUTANTS"]


@dataclass(frozen=True)
class Mutant:
    """One planted bug.

    name: kebab-case id. module: the module in this package (its ``IMPLEMENTATION`` is the
    plug-in). bug: what is wrong, one line. source: the public issue / PR it reproduces.
    caught_by: the checks that fail on it under ``profile`` (from the JSON records of a run
    without -x); empty when no case catches it. profile: the smallest profile that catches it.
    gap: why the quick profile (or, with empty ``caught_by``, every profile) misses it.
    """

    name: str
    module: str
    bug: str
    source: str
    caught_by: tuple[str, ...]
    profile: str = "quick"
    gap: str = ""

    @property
    def target(self) -> str:
        return f"{__name__}.{self.module}:IMPLEMENTATION"


CATALOGUE: tuple[Mutant, ...] = (
    # --- precision -------------------------------------------------------------------------------
    Mutant("cos-sin-bfloat16", "cos_sin_bfloat16",
           "cos/sin table kept in bfloat16 for every input dtype",
           "HF transformers issue 25681, PR 29285",
           ("agreement", "relative_position", "pair_norms", "identity_at_zero", "gradient")),
    Mutant("inv-freq-model-dtype", "inv_freq_model_dtype",
           "inv_freq buffer cast to the model's bf16/fp16 dtype",
           "InternLM issue 237; okoge-kaz/llm-recipes PR 6; HF transformers issue 25681",
           ("agreement",)),
    Mutant("positions-in-input-dtype", "positions_in_input_dtype",
           "positions rounded through x's dtype (bf16 holds integers only up to 256)",
           "keras-hub PR 1544; oarriaga/paz PR 415; keras-hub issue 1494 (ROPE-SEMANTICS.md)",
           ("agreement", "precision_horizon")),
    # --- pairing and layout --------------------------------------------------------------------
    Mutant("rotate-half-always", "rotate_half_always",
           "NeoX pairs (i, i + r/2) hard-coded, interleaved specs rotated as rotate-half",
           "vLLM PR 42765; qualcomm/vllm-qaic PR 59; DIOPI PR 892; nanotron PR 427",
           ("agreement", "pair_norms", "gradient")),
    Mutant("interleaved-always", "interleaved_always",
           "GPT-J pairs (2i, 2i + 1) hard-coded, rotate-half specs rotated as interleaved",
           "sglang PR 30342; huggingface/nanotron PR 214",
           ("agreement", "pair_norms", "gradient")),
    Mutant("cos-sin-layout-swapped", "cos_sin_layout_swapped",
           "cos/sin laid out for the other convention (repeat_interleave with rotate_half)",
           "raiyanyahya/how-to-train-your-gpt issue 6; facebookresearch/vjepa2 PR 15; xformers issue 779",
           ("agreement", "relative_position", "pair_norms", "gradient")),
    Mutant("rotation-sign-flipped", "rotation_sign_flipped",
           "rotate_half as cat(x2, -x1): every pair turns by -phi",
           "karpathy/nanochat PR 489; trymirai/lalamo PR 268",
           ("agreement", "gradient")),
    # --- positions -----------------------------------------------------------------------------
    Mutant("positions-ignored", "positions_ignored",
           "positions rebuilt as arange(seq): offsets, padding and packing ignored",
           "keras-hub PR 1544; pytorch/executorch PR 2010",
           ("agreement", "identity_at_zero", "gradient")),
    Mutant("cache-key-ignores-offset", "cache_key_ignores_offset",
           "cos/sin cache keyed on the sequence length, so a new offset gets stale angles",
           "lucidrains/rotary-embedding-torch issue 11",
           ("agreement", "identity_at_zero", "stateless")),
    Mutant("first-row-positions", "first_row_positions",
           "row 0's positions used for every row of the batch",
           "unslothai/unsloth PR 3803; linkedin/Liger-Kernel PR 477, PR 464",
           ("agreement", "gradient")),
    Mutant("decode-shared-offset", "decode_shared_offset",
           "single-token decode uses row 0's offset for the whole batch",
           "ml-explore/mlx PR 2564, issue 3494; vllm-project/vllm-metal PR 496",
           ("agreement",)),
    Mutant("rotation-along-heads-axis", "rotation_along_heads_axis",
           "cos/sin broadcast as if x were [batch, heads, seq, head_dim]",
           "facebookresearch/xformers issue 841; mlfoundations/open_lm issue 4",
           ("agreement", "relative_position", "pair_norms", "identity_at_zero", "tail_passthrough",
            "output_contract", "gradient")),
    # --- frequencies ---------------------------------------------------------------------------
    Mutant("exponent-missing-factor-2", "exponent_missing_factor_2",
           "theta_i = base^(-i/r) instead of base^(-2i/r)",
           "rasbt/LLMs-from-scratch issue 410; hkproj/pytorch-llama issue 3",
           ("agreement", "gradient")),
    Mutant("base-hardcoded-10000", "base_hardcoded",
           "rope_theta ignored: base 10000 always",
           "NVIDIA/TransformerEngine issue 849",
           ("agreement", "gradient")),
    # --- partial rotary ------------------------------------------------------------------------
    Mutant("partial-rotary-whole-head", "partial_rotary_whole_head",
           "partial_rotary_factor dropped: every channel of the head rotates",
           "AI-Hypercomputer/maxtext PR 4615; pie-project/pie PR 603",
           ("agreement", "tail_passthrough", "gradient")),
    Mutant("tail-not-copied", "tail_not_copied",
           "channels past rotary_dim come back as zeros",
           "almide/almide PR 1420; fla-org/flash-linear-attention PR 967; older onnxruntime CPU kernel",
           ("agreement", "identity_at_zero", "tail_passthrough", "gradient")),
    # --- scaling -------------------------------------------------------------------------------
    Mutant("llama3-scaling-discarded", "llama3_scaling_discarded",
           "Llama 3.1 frequencies computed, unscaled ones returned",
           "HF transformers PR 32330",
           ("agreement", "gradient")),
    Mutant("yarn-attention-factor-dropped", "yarn_attention_factor_dropped",
           "YaRN attention factor never multiplies cos/sin",
           "turboderp-org/exllamav3 issue 259; vLLM PR 46280 / PR 48351",
           ("agreement", "pair_norms", "identity_at_zero", "gradient")),
    Mutant("yarn-mscale-ignored", "yarn_mscale_ignored",
           "YaRN mscale / mscale_all_dim ignored: attention factor always 0.1 ln s + 1",
           "vLLM issue 48621, PR 48623; kekzl/imp PR 880",
           ("agreement",)),
    Mutant("dynamic-ntk-constant", "dynamic_ntk_constant",
           "dynamic NTK base grown for s * L0 whatever the sequence length",
           "vLLM issue 3488, issue 5093, issue 41236 / PR 41277",
           ("agreement", "gradient")),
    Mutant("dynamic-ntk-stateful", "dynamic_ntk_stateful",
           "dynamic NTK base kept from the longest earlier call",
           "HF transformers issue 25306, PR 27033, issue 27226",
           ("stateless",)),  # each dynamic case starts from a fresh instance: call order is stateless's to test
    Mutant("longrope-short-factor-unused", "longrope_short_factor_unused",
           "LongRoPE uses long_factor for every length",
           "ml-explore/mlx-lm PR 660; lablup/mlxcel issue 1358",
           ("agreement",)),
    Mutant("longrope-switch-at-equal", "longrope_switch_at_equal",
           "LongRoPE switches to long_factor at seq_len >= L0 (HF: > L0)",
           "unslothai/unsloth PR 10681",
           ("agreement",)),
    Mutant("mrope-interleaved-as-chunked", "mrope_interleaved_as_chunked",
           "Qwen3-VL interleaved M-RoPE run with Qwen2-VL's chunked sections",
           "alibaba/MNN PR 4133; mlx-node/mlx-node PR 80",
           ("agreement",)),
    # --- autograd, contract, fused q+k ---------------------------------------------------------
    Mutant("backward-wrong-sign", "backward_wrong_sign",
           "custom autograd backward rotates the cotangent by +phi instead of -phi",
           "NVIDIA/apex PR 1750; huggingface/candle PR 3612",
           ("gradient",)),
    Mutant("mutates-input", "mutates_input",
           "the result is written into x and x returned",
           "unslothai/unsloth issue 5001; lucidrains/rotary-embedding-torch PR 31",
           ("output_contract", "gradient")),
    Mutant("output-upcast", "output_upcast",
           "bf16/fp16 inputs come back float32",
           "lucidrains/rotary-embedding-torch PR 9; HF transformers PR 24262",
           ("agreement", "pair_norms", "tail_passthrough", "output_contract", "precision_horizon")),
    Mutant("qk-cross-wired", "qk_cross_wired",
           "fused rope_qk takes q's second pair elements from k and k's first from q",
           "hpcaitech/ColossalAI issue 6428, PR 6429",
           ("fused_qk",)),
)

MUTANTS: dict[str, str] = {m.name: m.target for m in CATALOGUE}
