"""Adapters that put real third-party RoPE code behind the plug-in contract.

One module per library: :mod:`.hf_transformers` (Llama, GPT-NeoX, Phi, GPT-J paths of HF
transformers), :mod:`.torchtune_rope`, :mod:`.rotary_embedding_torch_rope` (lucidrains) and
:mod:`.onnx_rope` (the ONNX ``RotaryEmbedding`` operator in ``onnx.reference`` and
onnxruntime), :mod:`.keras_hub_rope` (keras-hub ``RotaryEmbedding`` under each Keras backend,
one process each), :mod:`.liger_rope` (Liger-Kernel's fused Triton RoPE and Qwen2-VL M-RoPE),
:mod:`.ultralytics_sam2_rope` (SAM 2's axial RoPE) and :mod:`.vllm_rope` (vLLM's ``get_rope``
layers, run in a virtual environment of their own: ``nox -s vllm``). An adapter maps a
:class:`~rope_suite.conformance.spec.RopeSpec` to the library's own options and calls the
library; it computes no RoPE math itself. Each module's docstring lists every mapping, what
cannot be expressed (``supports()`` says False) and why.
Libraries are imported lazily, so importing an adapter never needs the library.
"""
