"""Adapters that put real third-party RoPE code behind the plug-in contract.

One module per library: :mod:`.hf_transformers` (Llama, GPT-NeoX, Phi, GPT-J paths of HF
transformers), :mod:`.torchtune_rope`, :mod:`.rotary_embedding_torch_rope` (lucidrains) and
:mod:`.onnx_rope` (the ONNX ``RotaryEmbedding`` operator in ``onnx.reference`` and
onnxruntime), :mod:`.keras_hub_rope` (keras-hub ``RotaryEmbedding`` under each Keras backend,
one process each), :mod:`.liger_rope` (Liger-Kernel's fused Triton RoPE and Qwen2-VL M-RoPE),
:mod:`.ultralytics_sam2_rope` (SAM 2's axial RoPE), :mod:`.diffusers_rope` (diffusers'
``get_1d_rotary_pos_embed`` + ``apply_rotary_emb``, real and complex paths, and FLUX's axial
``FluxPosEmbed``), :mod:`.timm_rope` (timm's EVA-02 ``RotaryEmbeddingCat``),
:mod:`.x_transformers_rope` (x-transformers' ``RotaryEmbedding``), :mod:`.litgpt_rope` (litgpt's
``build_rope_cache`` + ``apply_rope``), :mod:`.llama_models_rope` (Meta's reference
``precompute_freqs_cis`` + ``apply_rotary_emb``, Llama 3 and Llama 4), :mod:`.torchtitan_rope`
(torchtitan's ``ComplexRoPE``, ``CosSinRoPE`` and Qwen3.5 ``MRoPE``), :mod:`.megatron_rope`
(Megatron-Core's rotary modules with ``apply_rotary_pos_emb``), :mod:`.equinox_rope`
(``eqx.nn.RotaryPositionalEmbedding``), :mod:`.gemma_rope` (gemma's ``gm.math.apply_rope``) and
:mod:`.vllm_rope` (vLLM's ``get_rope`` layers, run in a virtual environment of their own:
``nox -s vllm``). An adapter maps a :class:`~rope_suite.conformance.spec.RopeSpec` to the
library's own options and calls the library; it computes no RoPE math itself. Each module's
docstring lists every mapping, what cannot be expressed (``supports()`` says False) and why.
Libraries are imported lazily, so importing an adapter never needs the library.
"""
