"""Converters: Hugging Face Llama 3 safetensors -> verified GGUF, quantized through llama.cpp.

Plain Python (no Qt). The API other parts of LlamaDesk use::

    from converters.pipeline import convert_checkpoint, estimate_output_bytes, QUANT_TYPES
    from converters.errors import ConversionError

    result = convert_checkpoint(src_dir, "out.gguf", qtype="q4_k_m",
                                keep_intermediate=False, threads=None, handle=handle)
    result.path, result.qtype, result.output_bytes
    result.verification.ok              # every check passed
    result.verification.checks          # [Check(name, ok, detail, skipped), ...]
    result.convert_seconds, result.quantize_seconds, result.verify_seconds, result.total_seconds

- ``QUANT_TYPES``: ("q4_k_m" (default, recommended), "q4_k_s", "q4_0", "q5_k_m", "q6_k",
  "q8_0", "f16", "bf16", "f32"); ``quant_types.QUANT_TYPES_INFO`` has labels and
  descriptions for each.
- ``estimate_output_bytes(src_dir, qtype) -> int``: the output size, before converting.
- Expected failures (incomplete or damaged download, pickle-only folder, unsupported
  model, no disk space, failed verification) raise ``ConversionError``; ``str()`` is
  one sentence for the user. Cancelling the ``common.task.TaskHandle`` raises
  ``common.task.Cancelled``. Either way no output file is left behind.
- Progress reports carry ``extra["stage"]`` ("convert" in bytes, "quantize" in
  tensors, "verify") plus ``tensor``/``tensors`` counts and the current tensor name
  as the message.
"""
