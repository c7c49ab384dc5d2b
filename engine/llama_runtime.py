"""A thin owner of one llama.cpp model + context through the low-level bindings.

Everything per token is one ctypes call (decode, sample, piece), so Python adds
almost nothing to llama.cpp's own speed. Not thread-safe: one owner thread.
"""
from __future__ import annotations

import ctypes
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

import llama_cpp
import numpy as np

from common.inference_options import default_n_ctx
from common.task import Cancelled, TaskHandle

log = logging.getLogger(__name__)

_backend_ready = False


class LoadFailed(RuntimeError):
    """llama.cpp could not load the model or create its context."""


def _init_backend() -> None:
    global _backend_ready
    if not _backend_ready:
        # llama-cpp-python prints every llama.cpp log line unless its logger says otherwise.
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        llama_cpp.llama_backend_init()
        _backend_ready = True


# Flash attention for a model that runs on the CPU only: off. llama.cpp's CPU
# flash-attention kernel wins only on large prompt batches; for single-token generation
# and short chat turns it loses more the deeper the cache is. Measured with llama-bench
# on SmolLM2-135M Q4_1, 1 thread: tg32 at depth 400 30.5 tok/s on vs 50.6 off, at depth
# 2000 11.7 vs 31.8; pp32 at depth 2000 16 vs 81. llama.cpp's own default (auto) turns it on.
CPU_FLASH_ATTN = False


def tokenize_with(vocab, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]:
    """Token ids of ``text`` in a llama.cpp vocabulary (``llama_model_get_vocab``)."""
    data = text.encode("utf-8")
    cap = len(data) + 16
    buf = (llama_cpp.llama_token * cap)()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, cap, add_special, parse_special)
    if n < 0:
        cap = -n
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, cap, add_special, parse_special)
    return list(buf[:n])


class LlamaRuntime:
    """One loaded model and its context: tokenize, decode, sample, edit the KV cache."""

    def __init__(self, path: Path, *, n_ctx: Optional[int], n_gpu_layers: int, n_threads: int,
                 n_batch: int = 512, flash_attn: Optional[bool] = None,
                 handle: Optional[TaskHandle] = None, f32_cache: bool = False,
                 n_seq_max: int = 2):
        _init_backend()
        self.path = Path(path)
        handle = handle or TaskHandle()

        def on_load_progress(fraction, _user):
            if handle.cancelled:
                return False
            handle.progress(round(float(fraction) * 100), 100, unit="%", message="Loading model")
            return True

        self._progress_cb = llama_cpp.llama_progress_callback(on_load_progress)
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers
        mparams.progress_callback = self._progress_cb
        self.model = llama_cpp.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not self.model:
            handle.check()
            raise LoadFailed(f"llama.cpp could not load {self.path.name}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_layer = llama_cpp.llama_model_n_layer(self.model)
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(self.model)

        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx if n_ctx else default_n_ctx(self.n_ctx_train)
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_threads = n_threads
        # Sequence 1 is scratch space for rebuilding part of the cache exactly while
        # sequence 0 stays usable; one unified cache, so n_ctx cells in all. The local
        # server asks for more sequences: one per request generating at once.
        cparams.n_seq_max = max(2, n_seq_max)
        cparams.kv_unified = True
        cparams.n_threads_batch = n_threads
        if flash_attn is None:
            flash_attn = CPU_FLASH_ATTN if n_gpu_layers == 0 else None
        cparams.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO if flash_attn is None else
                                   llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else
                                   llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        self.flash_attn_type = cparams.flash_attn_type
        if f32_cache:  # for exact comparisons (facts.md): F16 cache rounds the keys/values
            cparams.type_k = cparams.type_v = 0
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            llama_cpp.llama_model_free(self.model)
            self.model = None
            raise LoadFailed("llama.cpp could not create a context "
                             f"(n_ctx {cparams.n_ctx}, {n_gpu_layers} GPU layers)")
        self.n_ctx = llama_cpp.llama_n_ctx(self.ctx)
        self.n_batch = llama_cpp.llama_n_batch(self.ctx)
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self._abort_cb = None
        self._no_abort = llama_cpp.ggml_abort_callback()
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._piece_buf = ctypes.create_string_buffer(256)

    # --- vocabulary --------------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]:
        return tokenize_with(self.vocab, text, add_special=add_special, parse_special=parse_special)

    def piece(self, token: int, special: bool = False) -> bytes:
        n = llama_cpp.llama_token_to_piece(self.vocab, token, self._piece_buf, 256, 0, special)
        if n < 0:
            big = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, big, -n, 0, special)
            return big.raw[:n]
        return self._piece_buf.raw[:n]

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    @property
    def bos(self) -> int:
        return llama_cpp.llama_vocab_bos(self.vocab)

    @property
    def adds_bos(self) -> bool:
        return bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))

    def chat_template(self) -> Optional[str]:
        raw = llama_cpp.llama_model_chat_template(self.model, None)
        return raw.decode("utf-8", errors="replace") if raw else None

    def meta(self, key: str) -> Optional[str]:
        buf = ctypes.create_string_buffer(512)
        n = llama_cpp.llama_model_meta_val_str(self.model, key.encode(), buf, 512)
        return buf.value.decode("utf-8", errors="replace") if n >= 0 else None

    # --- evaluation --------------------------------------------------------
    def decode(self, tokens: Sequence[int], start_pos: int,
               handle: Optional[TaskHandle] = None, seq: int = 0) -> int:
        """Evaluate tokens at positions start_pos..; logits for the last one only.

        Returns how many tokens were evaluated. With a handle, a long evaluation is
        interruptible inside llama.cpp (abort callback) and between batches; on
        cancel the cache keeps what was evaluated and ``Cancelled`` is raised.
        """
        b = self._batch
        with self._abortable(handle):
            for done, chunk in self._batches(tokens, handle):
                n = len(chunk)
                for i, tok in enumerate(chunk):
                    b.token[i] = tok
                    b.pos[i] = start_pos + done + i
                    b.n_seq_id[i] = 1
                    b.seq_id[i][0] = seq
                    b.logits[i] = 0
                b.logits[n - 1] = 1 if done + n == len(tokens) else 0
                self._decode_batch(n)
        return len(tokens)

    def decode_outputs(self, tokens: Sequence[int], first_output: int,
                       handle: Optional[TaskHandle] = None) -> np.ndarray:
        """Evaluate ``tokens`` at positions 0.. of sequence 0 on a cleared cache; return the
        logits of positions ``first_output``.. as an array (n_outputs, n_vocab) float32.

        For scoring a text (perplexity, KL divergence): only the asked-for rows are
        computed and copied. Interruptible like ``decode``.
        """
        self.kv_clear()
        n_out = max(0, len(tokens) - first_output)
        out = np.empty((n_out, self.n_vocab), dtype=np.float32)
        b = self._batch
        filled = 0
        with self._abortable(handle):
            for done, chunk in self._batches(tokens, handle):
                wanted = 0
                for i, tok in enumerate(chunk):
                    b.token[i] = tok
                    b.pos[i] = done + i
                    b.n_seq_id[i] = 1
                    b.seq_id[i][0] = 0
                    b.logits[i] = 1 if done + i >= first_output else 0
                    wanted += done + i >= first_output
                self._decode_batch(len(chunk))
                if wanted:
                    ptr = llama_cpp.llama_get_logits(self.ctx)
                    out[filled:filled + wanted] = np.ctypeslib.as_array(ptr, shape=(wanted, self.n_vocab))
                    filled += wanted
        return out

    def _batches(self, tokens: Sequence[int], handle: Optional[TaskHandle]):
        """``(offset, slice)`` for each batch-sized slice of ``tokens``; the handle is checked before each."""
        for done in range(0, len(tokens), self.n_batch):
            if handle is not None:
                handle.check()
            yield done, tokens[done:done + self.n_batch]

    def _decode_batch(self, n: int) -> None:
        """Evaluate the first ``n`` entries of the batch; ``Cancelled`` if the abort callback stopped it."""
        self._batch.n_tokens = n
        rc = llama_cpp.llama_decode(self.ctx, self._batch)
        if rc == 2:
            raise Cancelled()
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc})")

    @contextmanager
    def _abortable(self, handle: Optional[TaskHandle]):
        """With a handle, llama.cpp's abort callback watches it while the block runs."""
        if handle is not None:
            llama_cpp.llama_set_abort_callback(self.ctx, self._make_abort(handle), None)
        try:
            yield
        finally:
            if handle is not None:
                llama_cpp.llama_set_abort_callback(self.ctx, self._no_abort, None)

    def _make_abort(self, handle: TaskHandle):
        # Checked by llama.cpp between graph nodes; only installed for prompt batches,
        # where a Python call per node costs nothing next to the matrix work.
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: handle.cancelled)
        return self._abort_cb

    def decode_one(self, token: int, pos: int) -> None:
        b = self._batch
        b.token[0] = token
        b.pos[0] = pos
        b.n_seq_id[0] = 1
        b.seq_id[0][0] = 0
        b.logits[0] = 1
        b.n_tokens = 1
        rc = llama_cpp.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc})")

    def sample(self, sampler) -> int:
        return llama_cpp.llama_sampler_sample(sampler, self.ctx, -1)

    def last_logits(self) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    # --- KV cache ----------------------------------------------------------
    def can_shift(self) -> bool:
        return bool(llama_cpp.llama_memory_can_shift(self.mem))

    def kv_remove(self, p0: int, p1: int, seq: int = 0) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self.mem, seq, p0, p1))

    def kv_copy(self, src: int, dst: int, p0: int, p1: int) -> None:
        """Let sequence ``dst`` share ``src``'s entries at positions [p0, p1) (no copy made)."""
        llama_cpp.llama_memory_seq_cp(self.mem, src, dst, p0, p1)

    def kv_shift(self, p0: int, p1: int, delta: int) -> None:
        llama_cpp.llama_memory_seq_add(self.mem, 0, p0, p1, delta)

    def seq_state(self, seq: int = 0):
        """A copy of sequence ``seq``'s KV state (a bytearray), for a snapshot."""
        size = llama_cpp.llama_state_seq_get_size(self.ctx, seq)
        buf = bytearray(size)        # calloc'd: no pass to zero it first
        n = llama_cpp.llama_state_seq_get_data(self.ctx, (ctypes.c_uint8 * size).from_buffer(buf), size, seq)
        if n != size:
            raise RuntimeError(f"llama.cpp copied {n} of {size} bytes of the state")
        return buf

    def set_seq_state(self, data, seq: int = 0) -> bool:
        """Replace sequence ``seq`` with a state from ``seq_state``; False when llama.cpp refused it."""
        n = len(memoryview(data).cast("B"))
        buf = (ctypes.c_uint8 * n).from_buffer(data)
        return llama_cpp.llama_state_seq_set_data(self.ctx, buf, n, seq) == n

    def kv_clear(self) -> None:
        llama_cpp.llama_memory_clear(self.mem, True)

    def kv_pos_max(self) -> int:
        return llama_cpp.llama_memory_seq_pos_max(self.mem, 0)

    def close(self) -> None:
        if getattr(self, "_batch", None) is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "ctx", None):
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            llama_cpp.llama_model_free(self.model)
            self.model = None
