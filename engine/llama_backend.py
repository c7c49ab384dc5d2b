"""In-process llama.cpp backend: a GGUF, its chat template, and a lean generation loop."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

from common.inference_options import GpuLayers, default_n_ctx, default_threads  # noqa: F401 - engine's API
from common.task import Cancelled, TaskHandle
from engine.backend import EngineError
from engine.context_window import fit_history, reply_reserve
from engine.kv_reuse import plan_reuse
from engine.templates import ChatTemplate, TemplateError
from engine.text_stream import StopStringFilter, Utf8Stream
from engine.types import ChatMessage, FitResult, GenerationParams, ReplyStats

log = logging.getLogger(__name__)



class LlamaCppBackend:
    """A GGUF loaded into llama.cpp, streaming chat replies token by token.

    The KV cache is kept between replies: an unchanged history costs only the new
    tokens, and when old turns leave the window they are cut out of the cache and
    the rest is shifted instead of re-evaluated (``last_stats.prompt_evaluated``,
    ``evaluated_tokens``).
    """

    local = True     # runs in this process (engine.backend.Backend)

    def __init__(self, model_path: str | os.PathLike, *, n_ctx: Optional[int] = None,
                 n_gpu_layers: GpuLayers = "auto", n_threads: Optional[int] = None,
                 n_batch: int = 512, flash_attn: Optional[bool] = None,
                 f32_cache: bool = False, n_seq_max: int = 2):
        self.model_path = Path(model_path)
        self.n_seq_max = n_seq_max
        self.name = self.model_path.stem
        self.requested_n_ctx = n_ctx
        self.requested_gpu_layers = n_gpu_layers
        self.n_threads = n_threads or default_threads()
        self.n_batch = n_batch
        self.flash_attn = flash_attn
        self.f32_cache = f32_cache
        self.gpu_plan = None           # engine.gpu_plan.OffloadPlan, after load
        self.gpu_layers = 0
        self.load_notes: list[str] = []
        self.template: Optional[ChatTemplate] = None
        self.last_stats: Optional[ReplyStats] = None
        self.last_fit: Optional[FitResult] = None
        self.evaluated_tokens = 0      # every token llama.cpp evaluated since load
        self.shift_count = 0
        self._rt = None
        self._cache: list[int] = []    # tokens whose keys/values sit in the cache, in order
        # Cached entries from this position on went through a shift (or were computed
        # on top of shifted ones): close to, but not exactly, what a full read gives.
        self._approx_from: Optional[int] = None
        # Saved KV caches (engine.snapshots): off until ``enable_snapshots``. The front end
        # says which conversation the cache holds (``conversation``, its id as text).
        self.snapshots = None
        self.conversation: Optional[str] = None
        self.last_restore = None       # engine.snapshots.Restored of the last restore
        self._unsaved = False          # the cache changed since it was last saved
        self._cache_tag: Optional[str] = None   # the conversation the cache holds

    # --- lifecycle ----------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._rt is not None

    @property
    def n_ctx(self) -> int:
        return self._rt.n_ctx if self._rt is not None else 0

    @property
    def flash_attn_on(self) -> Optional[bool]:
        """Flash attention as the context was created: on, off, or None (llama.cpp's auto)."""
        import llama_cpp

        kind = self._require().flash_attn_type
        return None if kind == llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO else kind == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED

    @property
    def plan_text(self) -> str:
        """How the model is spread over GPU and CPU, in words (empty before load)."""
        parts = [self.gpu_plan.text] if self.gpu_plan is not None else []
        return " ".join(parts + self.load_notes)

    def load(self, handle: Optional[TaskHandle] = None) -> None:
        from engine.machine import detect_device
        from engine.gpu_plan import model_sizes_from_gguf, plan_offload
        from engine.llama_runtime import LlamaRuntime, LoadFailed

        handle = handle or TaskHandle()
        handle.check()
        handle.progress(0, 100, unit="%", message=f"Loading {self.name}")
        _validate(self.model_path)
        device = detect_device()
        sizes = model_sizes_from_gguf(self.model_path)
        n_ctx = self.requested_n_ctx or default_n_ctx(sizes.n_ctx_train)
        self.gpu_plan = plan_offload(sizes, device, n_ctx, manual=self.requested_gpu_layers)
        layers = self.gpu_plan.gpu_layers
        self.load_notes = []
        while True:
            try:
                self._rt = LlamaRuntime(self.model_path, n_ctx=n_ctx, n_gpu_layers=layers,
                                        n_threads=self.n_threads, n_batch=self.n_batch,
                                        flash_attn=self.flash_attn, handle=handle,
                                        f32_cache=self.f32_cache, n_seq_max=self.n_seq_max)
                break
            except LoadFailed as exc:
                handle.check()
                if layers <= 0:
                    raise EngineError(f"Could not load {self.model_path.name}: {exc}. "
                                      "The file may be damaged or not a llama.cpp model.") from exc
                fewer = layers // 2 if layers > 4 else 0
                self.load_notes.append(
                    f"Loading with {layers} GPU layers ran out of GPU memory; "
                    f"retried with {fewer}." if fewer else
                    f"Loading with {layers} GPU layers ran out of GPU memory; running on the CPU.")
                log.warning(self.load_notes[-1])
                layers = fewer
        self.gpu_layers = layers
        self._cache = []
        self._approx_from = None
        self.evaluated_tokens = 0
        self._setup_template()
        handle.progress(100, 100, unit="%", message=f"Loaded {self.name}")

    def _setup_template(self) -> None:
        rt = self._rt
        bos = rt.piece(rt.bos, special=True).decode("utf-8", "replace") if rt.bos >= 0 else ""
        eos_id = _eos(rt)
        eos = rt.piece(eos_id, special=True).decode("utf-8", "replace") if eos_id >= 0 else ""
        source = rt.chat_template()
        if not source:
            self.load_notes.append("The model has no chat template (a base model); "
                                   "chatting uses the built-in Llama 3 format.")
        try:
            self.template = ChatTemplate(source, bos_token=bos, eos_token=eos)
            self.template.render([ChatMessage("system", "s"), ChatMessage("user", "u")])
        except TemplateError as exc:
            self.load_notes.append(f"The model's chat template was refused ({exc}); "
                                   "using the built-in Llama 3 format.")
            log.warning(self.load_notes[-1])
            self.template = ChatTemplate(None, bos_token=bos, eos_token=eos)

    def unload(self) -> None:
        if self.snapshots is not None:
            self.snapshots.close()
            self.snapshots = None
        if self._rt is not None:
            self._rt.close()
            self._rt = None
        self._cache = []
        self._approx_from = None

    def _require(self):
        if self._rt is None:
            raise EngineError("no model is loaded")
        return self._rt

    @property
    def runtime(self):
        """The loaded ``LlamaRuntime`` (for batched decoding of several sequences)."""
        return self._require()

    # --- tokens -------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return self._require().tokenize(text, add_special=False, parse_special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def prompt_tokens(self, messages: Sequence[ChatMessage], **template_vars) -> list[int]:
        """The rendered conversation as tokens, with exactly one BOS when the model wants one.

        ``template_vars`` go to the chat template too (e.g. ``tools``). When the last
        message is the assistant's, that reply is continued: the prompt is the
        conversation before it with the assistant's turn opened, followed by the reply's
        text exactly as it stands (not closed, not trimmed by the template), so the next
        token follows its last character.
        """
        return self._prompt_parts(messages, **template_vars)[0]

    def _prompt_parts(self, messages: Sequence[ChatMessage], **template_vars) -> tuple[list[int], int]:
        """``prompt_tokens`` and how many of them, at the end, are the reply being continued."""
        rt = self._require()
        partial = None
        if messages and messages[-1].role == "assistant":
            partial, messages = messages[-1].content, messages[:-1]
        text = self.template.render(messages, add_generation_prompt=True, **template_vars)
        tokens = self.with_bos(rt.tokenize(text, add_special=False, parse_special=True))
        reply = self._continuation_tokens(tokens, partial) if partial else []
        return tokens + reply, len(reply)

    def with_bos(self, tokens: list[int]) -> list[int]:
        """``tokens`` starting with exactly one BOS when the model wants one."""
        rt = self._require()
        if rt.adds_bos and rt.bos >= 0:
            while len(tokens) > 1 and tokens[0] == rt.bos and tokens[1] == rt.bos:
                tokens.pop(0)
            if not tokens or tokens[0] != rt.bos:
                tokens.insert(0, rt.bos)
        return tokens

    def _continuation_tokens(self, prefix: list[int], text: str) -> list[int]:
        """Tokens of a reply being continued: the ones the model generated, where the
        cache still holds them after ``prefix`` and they spell the start of ``text``,
        then the rest of ``text`` tokenized as plain text (no special tokens)."""
        rt = self._rt
        data = text.encode("utf-8")
        kept: list[int] = []
        if self._cache[:len(prefix)] == prefix:
            spelled = used = used_bytes = 0
            for tok in self._cache[len(prefix):]:
                piece = rt.piece(tok)
                if not data.startswith(piece, spelled):
                    break
                spelled += len(piece)
                kept.append(tok)
                if _char_boundary(data, spelled):
                    used, used_bytes = len(kept), spelled
            kept, data = kept[:used], data[used_bytes:]
        rest = data.decode("utf-8")
        return kept + (rt.tokenize(rest, add_special=False, parse_special=False) if rest else [])

    def reset_cache(self) -> None:
        """Forget the cached conversation; the next reply evaluates its prompt in full."""
        self._require().kv_clear()
        self._cache = []
        self._approx_from = None
        self._unsaved = False

    @property
    def cache_tokens(self) -> list[int]:
        return list(self._cache)

    # --- the window ---------------------------------------------------------
    def fit_history(self, messages: Sequence[ChatMessage], params: GenerationParams) -> FitResult:
        self._require()
        fit = fit_history(messages, n_ctx=self.n_ctx,
                          reserve=reply_reserve(params.max_tokens, self.n_ctx),
                          count_prompt=lambda msgs: len(self.prompt_tokens(msgs)),
                          count_text=self.count_tokens)
        self.last_fit = fit
        return fit

    # --- snapshots --------------------------------------------------------
    def enable_snapshots(self, root=None, *, disk_budget: Optional[int] = None,
                         ram_budget: Optional[int] = None):
        """Save the cache after replies and restore saved ones (engine.snapshots)."""
        from engine import snapshots as S

        rt = self._require()
        key = {"model": S.model_identity(self.model_path), "n_ctx": rt.n_ctx,
               "cache_type": "f32" if self.f32_cache else "f16", "flash_attn": rt.flash_attn_type,
               "gpu_layers": self.gpu_layers, "llama": S.llama_build()}
        root = S.snapshots_root() if root is None else root
        S.prune_stale(root)
        budget = S.DEFAULT_DISK_BUDGET_MB << 20 if disk_budget is None else disk_budget
        self.snapshots = S.SnapshotStore(root, key, disk_budget=budget, ram_budget=ram_budget)
        return self.snapshots

    def save_snapshot(self):
        """Keep the cache of ``conversation`` (after a reply, or when idle); the copy takes
        milliseconds here, the file is written on the store's own thread."""
        if self.snapshots is None or not self._cache_tag or not self._cache or not self._unsaved:
            return None
        rt = self._require()
        if rt.kv_pos_max() + 1 != len(self._cache):   # never save what does not match its tokens
            return None
        t0 = time.perf_counter()
        state = rt.seq_state(0)
        meta = self.snapshots.put(self._cache_tag, self._cache,
                                  None if self.cache_exact else self._approx_from, state)
        self.snapshots.last_save_s = time.perf_counter() - t0
        self._unsaved = False
        return meta

    def restore_for(self, messages: Sequence[ChatMessage], params: Optional[GenerationParams] = None):
        """Bring back the saved cache that best fits ``messages`` (opening a conversation),
        evaluating nothing; the ``Restored`` report, or None when none beats the live one.
        ``params``: those of the next reply (its length decides what fits the window)."""
        self._require()
        if self.snapshots is None:
            return None
        try:
            fit = self.fit_history(messages, params or GenerationParams())
        except EngineError:
            return None
        prompt = self.prompt_tokens(fit.messages)
        return self._restore_best(prompt + [-1])   # as if one more token were to follow

    def _restore_best(self, prompt: list[int]):
        from engine.snapshots import BadSnapshot

        rt = self._rt
        self.last_restore = None
        tried: list[str] = []
        for _ in range(3):
            live = plan_reuse(self._cache, prompt, can_shift=rt.can_shift()).reused
            pick = self.snapshots.best(prompt, live, can_shift=rt.can_shift(), exclude=tried)
            if pick is None:
                return None
            meta, _reused = pick
            tried.append(meta.name)
            t0 = time.perf_counter()
            try:
                data, source = self.snapshots.load(meta)
            except BadSnapshot:
                continue                    # removed; the next best, or the history re-read
            self.save_snapshot()            # what the cache holds now is not lost
            rt.kv_remove(-1, -1, seq=0)
            rt.kv_remove(-1, -1, seq=1)
            self._cache, self._approx_from = [], None
            if not rt.set_seq_state(data, 0) or rt.kv_pos_max() + 1 != meta.n_tokens:
                rt.kv_remove(-1, -1, seq=0)
                self.snapshots.discard(meta.name, "llama.cpp refused the state")
                continue
            self._cache = [int(t) for t in meta.tokens]
            self._approx_from = meta.approx_from
            self._cache_tag = self.conversation or meta.tag
            self._unsaved = False
            self.last_restore = _restored(meta, time.perf_counter() - t0, source)
            return self.last_restore
        return None

    def _prepare(self, prompt: list[int], handle: TaskHandle) -> int:
        """Bring the cache to ``prompt`` minus evaluation of what is already there."""
        rt = self._rt
        if self.snapshots is not None:
            self._restore_best(prompt)
        self._unsaved = True
        self._cache_tag = self.conversation
        plan = plan_reuse(self._cache, prompt, can_shift=rt.can_shift())
        if plan.shifted:
            rt.kv_remove(plan.prefix, plan.remove_to)
            rt.kv_shift(plan.remove_to, -1, -plan.removed)
            self.shift_count += 1
            self._approx_from = (plan.prefix if self._approx_from is None
                                 else min(plan.prefix, self._approx_from))
        keep = plan.reused
        if self._approx_from is not None and self._approx_from >= keep:
            self._approx_from = None
        rt.kv_remove(keep, -1)  # a stale tail, e.g. a reply the template re-renders differently
        self._cache = list(prompt[:keep])
        todo = prompt[keep:]
        try:
            rt.decode(todo, keep, handle)
        except Cancelled:
            kept = rt.kv_pos_max() + 1
            self.evaluated_tokens += max(0, kept - keep)
            self._cache = list(prompt[:kept])
            raise
        self.evaluated_tokens += len(todo)
        self._cache = list(prompt)
        return len(todo)

    # --- exact rebuild after a shift ----------------------------------------
    @property
    def cache_exact(self) -> bool:
        """False after a shift, until ``rebuild_cache`` re-read the shifted part."""
        return self._approx_from is None or self._approx_from >= len(self._cache)

    def rebuild_cache(self, handle: Optional[TaskHandle] = None, chunk: int = 64) -> bool:
        """Re-read the shifted part of the cache exactly; meant for when the model is idle.

        The shifted part is evaluated again, ``chunk`` tokens at a time, into a
        scratch sequence that shares the exact prefix; after each chunk the
        conversation's sequence swaps its approximate entries for the exact ones
        (shared cells, no copy; the chunk's old cells are freed first, so a full
        window has room). The cache is therefore whole and usable between chunks:
        cancelling the handle (a new request came) stops it within one chunk and
        loses nothing, and the next reply starts from a cache that is exact further
        than before. Returns True when the cache is exact. "Exact" up to the order of
        floating-point sums: cells sit elsewhere than after a fresh read.
        """
        rt = self._require()
        handle = handle or TaskHandle()
        start = self._approx_from
        total = len(self._cache)
        if start is None or start >= total:
            self._approx_from = None
            return True
        pos = start
        rt.kv_remove(-1, -1, seq=1)
        rt.kv_copy(0, 1, 0, start)
        try:
            while pos < total:
                if handle.cancelled:
                    return False
                n = min(chunk, total - pos)
                rt.kv_remove(pos, pos + n, seq=0)
                try:
                    rt.decode(self._cache[pos:pos + n], pos, seq=1)
                except Exception:
                    rt.kv_remove(pos, -1, seq=0)  # keep what is whole: the exact part
                    del self._cache[pos:]
                    self._approx_from = None
                    raise
                rt.kv_copy(1, 0, pos, pos + n)
                self._unsaved = True
                self.evaluated_tokens += n
                pos += n
                self._approx_from = pos
                handle.progress(pos - start, total - start, unit="tokens",
                                message="Refreshing the conversation's memory")
            self._approx_from = None
            return True
        finally:
            rt.kv_remove(-1, -1, seq=1)

    # --- generation ---------------------------------------------------------
    def stream_chat(self, messages: Sequence[ChatMessage], params: GenerationParams,
                    handle: Optional[TaskHandle] = None) -> Iterator[str]:
        """Stream the reply to ``messages``; ``last_stats`` and ``last_fit`` describe it."""
        from engine.sampling import build_sampler
        import llama_cpp

        rt = self._require()
        handle = handle or TaskHandle()
        start = time.perf_counter()
        fit = self.fit_history(messages, params)
        prompt, n_continued = self._prompt_parts(fit.messages)
        stats = ReplyStats(n_ctx=self.n_ctx, gpu_layers=self.gpu_layers,
                           prompt_tokens=len(prompt), dropped=fit.dropped)
        self.last_stats = stats
        try:
            t0 = time.perf_counter()
            evaluated = self._prepare(prompt, handle)
            t1 = time.perf_counter()
        except Cancelled:
            stats.stop_reason = "cancelled"
            stats.ctx_used = len(self._cache)
            return
        stats.prompt_evaluated = evaluated
        stats.prompt_tps = evaluated / (t1 - t0) if evaluated and t1 > t0 else None
        sampler = build_sampler(params, rt.n_vocab)
        # A continued reply's own tokens count as already generated (the repeat penalty
        # sees them), so greedy decoding goes on exactly as one uninterrupted reply would.
        for tok in prompt[len(prompt) - n_continued:]:
            llama_cpp.llama_sampler_accept(sampler, tok)
        utf8 = Utf8Stream()
        stops = StopStringFilter(params.stop)
        limit = min(params.max_tokens, self.n_ctx - len(self._cache))
        pos = len(self._cache)
        n = 0
        t_gen = time.perf_counter()
        try:
            while True:
                handle.check()
                tok = rt.sample(sampler)
                if rt.is_eog(tok):
                    stats.stop_reason = "eog"
                    break
                n += 1
                text = stops.feed(utf8.feed(rt.piece(tok)))
                if text:
                    if stats.ttft_s is None:
                        stats.ttft_s = time.perf_counter() - start
                    yield text
                if stops.stopped:
                    stats.stop_reason = "stop_string"
                    break
                if n >= limit:
                    stats.stop_reason = "length"
                    stats.limited_by = "max_tokens" if limit == params.max_tokens else "context"
                    stats.length_limit = limit
                    break
                rt.decode_one(tok, pos)
                self._cache.append(tok)
                pos += 1
                self.evaluated_tokens += 1
            if not stops.stopped:
                tail = stops.feed(utf8.flush()) + stops.flush()
                if tail:
                    yield tail
        except Cancelled:
            stats.stop_reason = "cancelled"
        finally:
            llama_cpp.llama_sampler_free(sampler)
            elapsed = time.perf_counter() - t_gen
            stats.gen_tokens = n
            stats.gen_tps = n / elapsed if n and elapsed > 0 else None
            stats.ctx_used = len(self._cache)
            stats.extra["shifts"] = self.shift_count
            if self.last_restore is not None:
                stats.extra["snapshot"] = self.last_restore.to_dict()

    def prefill(self, messages: Sequence[ChatMessage], params: GenerationParams,
                handle: Optional[TaskHandle] = None) -> FitResult:
        """Fit and evaluate the prompt without generating (warm-up, or quality checks)."""
        fit = self.fit_history(messages, params)
        self._prepare(self.prompt_tokens(fit.messages), handle or TaskHandle())
        return fit

    # --- measuring ----------------------------------------------------------
    def next_token_logits(self):
        """Logits after the last evaluated token (for quality checks)."""
        return self._require().last_logits()


def _restored(meta, seconds: float, source: str):
    from engine.snapshots import Restored

    return Restored(tokens=meta.n_tokens, seconds=seconds, source=source, exact=meta.exact,
                    name=meta.name)


def _char_boundary(data: bytes, i: int) -> bool:
    """True when ``data[:i]`` ends on a whole UTF-8 character."""
    return i >= len(data) or (data[i] & 0xC0) != 0x80


def _eos(rt) -> int:
    import llama_cpp

    eot = llama_cpp.llama_vocab_eot(rt.vocab)
    return eot if eot >= 0 else llama_cpp.llama_vocab_eos(rt.vocab)


def _validate(path: Path) -> None:
    """Refuse a malformed or hostile GGUF before llama.cpp parses it."""
    from models.gguf_validate import validate_gguf_set

    try:
        validate_gguf_set(path)  # and every other part llama.cpp opens for a split set
    except Exception as exc:
        raise EngineError(f"{path.name} was refused: {exc}") from exc
