"""The GGUF key/value metadata of a converted Llama 3 model."""
from __future__ import annotations

import gguf

from converters.checkpoint import Checkpoint
from converters.tokenizer_meta import TokenizerMeta

# Where a checkpoint's repo lives on the web; recorded in the GGUF, never fetched.
HUB_WEB_URL = "https://huggingface.co"

FILE_TYPES = {"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
              "BF16": gguf.LlamaFileType.MOSTLY_BF16}


def add_metadata(w: gguf.GGUFWriter, ckpt: Checkpoint, tok: TokenizerMeta, out_dtype: str) -> None:
    c = ckpt.config
    w.add_name(ckpt.name)
    if ckpt.repo_id:
        w.add_source_repo_url(f"{HUB_WEB_URL}/{ckpt.repo_id}")
        if ckpt.revision:
            w.add_source_url(f"{HUB_WEB_URL}/{ckpt.repo_id}/tree/{ckpt.revision}")
    w.add_file_type(int(FILE_TYPES[out_dtype]))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    w.add_vocab_size(c.vocab_size)
    w.add_context_length(c.context_length)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.n_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_rope_dimension_count(c.head_dim)
    w.add_rope_freq_base(c.rope_theta)
    w.add_head_count(c.n_heads)
    w.add_head_count_kv(c.n_kv_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    if c.head_dim != c.hidden_size // c.n_heads:
        w.add_key_length(c.head_dim)
        w.add_value_length(c.head_dim)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tok.tokens)
    w.add_token_types(tok.token_types)
    w.add_token_merges(tok.merges)
    w.add_bos_token_id(tok.bos_id)
    w.add_eos_token_id(tok.eos_id)
    if tok.eot_id is not None:
        w.add_eot_token_id(tok.eot_id)
    w.add_add_bos_token(True)
    if tok.chat_template:
        w.add_chat_template(tok.chat_template)
