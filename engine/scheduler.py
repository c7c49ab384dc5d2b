"""Several replies at once from one loaded model: llama.cpp batched decoding over slots.

A ``BatchScheduler`` owns a ``LlamaCppBackend`` whose context holds one KV
sequence per slot (``n_seq_max``, one unified cache of ``slot_ctx`` cells per
slot). Requests wait in a queue; each free slot takes the next one. Every step
builds one ``llama_batch`` holding the next token of every slot that is
generating plus a chunk of the prompt of every slot still reading its prompt,
decodes it with one ``llama_decode``, and samples each slot from its own row of
logits with its own sampler chain (and grammar). So N replies cost about one
reply's memory traffic per step instead of N.

Each request is fitted into its slot's window like a chat in the window (the
engine's fitter: oldest whole turns go first), or refused when it asks for
strictness. A slot keeps its cache after a reply: the next request whose prompt
shares a prefix with it (the same conversation, one turn later) reuses that part.

Two ways to drive it, same code: ``start()`` runs the steps on a thread of its own
(the headless server); ``run_one(request)`` runs one request to its end on the
calling thread (a front end whose model already has an owner thread, such as the
window's engine worker, passes its requests in through that thread's queue).

Events reach the caller through ``request.on_event(kind, value)``, called on the
scheduler's thread: ``("start", ReplyStats)`` once the prompt is fitted,
``("text", str)`` per piece, then exactly one of ``("done", ReplyStats)`` or
``("error", exception)``. Cancelling ``request.handle`` (any thread) ends the
reply within one token, with ``stop_reason == "cancelled"``.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from common.task import TaskHandle
from engine.backend import ContextOverflowError, EngineError, MessageTooLongError
from engine.context_window import fit_history, reply_reserve
from engine.kv_reuse import common_prefix
from engine.text_stream import StopStringFilter, Utf8Stream
from engine.types import ChatMessage, GenerationParams, ReplyStats

log = logging.getLogger(__name__)

MAX_QUEUED = 64


class ContextLengthExceeded(ContextOverflowError):
    """The request does not fit its window and asked not to be shortened."""

    def __init__(self, needed: int, n_ctx: int, reserve: int):
        self.needed, self.n_ctx, self.reserve = needed, n_ctx, reserve
        super().__init__(
            f"This model's context window holds {n_ctx} tokens; the request needs {needed} "
            f"tokens for its messages plus {reserve} for the reply. Shorten the messages, "
            f"lower max_tokens, or allow older messages to be left out.")


class QueueFull(EngineError):
    """Too many requests are waiting already."""


@dataclass(eq=False)      # compared and hashed by identity: each is one reply
class GenerationRequest:
    """One reply to generate: a conversation (chat template) or a raw prompt."""

    params: GenerationParams
    on_event: Callable[[str, object], None]
    messages: Optional[Sequence[ChatMessage]] = None
    prompt: Optional[str] = None          # raw text, no template (completions)
    grammar: Optional[str] = None         # GBNF, root rule "root"
    strict: bool = False                  # refuse instead of leaving old turns out
    template_vars: dict = field(default_factory=dict)
    handle: TaskHandle = field(default_factory=TaskHandle)


@dataclass
class _Slot:
    seq: int
    cache: list = field(default_factory=list)     # tokens in this sequence's KV cells
    req: Optional[GenerationRequest] = None
    todo: list = field(default_factory=list)      # prompt tokens still to evaluate
    pending: Optional[int] = None                 # sampled token, evaluated next step
    sampler: object = None
    utf8: Optional[Utf8Stream] = None
    stops: Optional[StopStringFilter] = None
    stats: Optional[ReplyStats] = None
    limit: int = 0
    t0: float = 0.0
    t_gen: float = 0.0
    last_used: float = 0.0

    @property
    def busy(self) -> bool:
        return self.req is not None


class BatchScheduler:
    """N slots over one model; see the module docstring."""

    def __init__(self, backend, *, parallel: int = 1, slot_ctx: Optional[int] = None,
                 seq_ids: Optional[Sequence[int]] = None):
        self.backend = backend
        rt = backend.runtime
        self.rt = rt
        self.parallel = max(1, parallel)
        self.slot_ctx = slot_ctx or rt.n_ctx // self.parallel
        ids = list(seq_ids) if seq_ids is not None else list(range(self.parallel))
        self.slots = [_Slot(seq=s) for s in ids[:self.parallel]]
        import llama_cpp

        self._llama = llama_cpp
        self._batch = llama_cpp.llama_batch_init(max(rt.n_batch, self.parallel), 0, 1)
        self._batch_cap = max(rt.n_batch, self.parallel)
        self._queue: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._lock = threading.Lock()
        self.counters = dict(requests=0, active=0, queued=0, decodes=0, tokens=0,
                             multi_sequence_decodes=0, max_sequences_in_batch=0, cancelled=0,
                             errors=0)

    # --- the model ------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def model_path(self):
        return self.backend.model_path

    @property
    def template_source(self) -> str:
        return self.backend.template.source if self.backend.template is not None else ""

    def cancel_all(self) -> None:
        """Cancel every queued and running reply (any thread, also a signal handler)."""
        for req in list(self._queue):
            req.handle.cancel()
        for s in self.slots:
            req = s.req
            if req is not None:
                req.handle.cancel()

    def snapshot(self) -> dict:
        with self._lock:
            out = dict(self.counters)
        out["active"] = sum(1 for s in self.slots if s.busy)
        out["queued"] = len(self._queue)
        out["parallel"] = self.parallel
        out["slot_ctx"] = self.slot_ctx
        return out

    # --- front-end calls (any thread) ------------------------------------------------
    def submit(self, req: GenerationRequest) -> None:
        """Queue ``req``; its events arrive through ``req.on_event`` on the scheduler thread."""
        with self._cv:
            if len(self._queue) >= MAX_QUEUED:
                raise QueueFull(f"{MAX_QUEUED} requests are waiting already; try again shortly.")
            self._queue.append(req)
            self._cv.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="llamadesk-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> bool:
        """Cancel every reply, end the thread; the backend stays loaded (its owner unloads it).

        False when the thread is still inside llama.cpp after ``timeout`` seconds: the
        owner must then not free the model (that thread still uses its context)."""
        with self._cv:
            self._stopping = True
            waiting = list(self._queue)
            self._queue.clear()
            for s in self.slots:
                if s.req is not None:
                    s.req.handle.cancel()
            self._cv.notify()
        for req in waiting:
            req.handle.cancel()
            _emit(req, "error", EngineError("The server is shutting down."))
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():   # still inside llama.cpp: leave it its batch
                log.warning("the scheduler did not stop within %.0f s", timeout)
                return False
            self._thread = None
        self.close()
        return True

    def close(self) -> None:
        if self._batch is not None:
            self._llama.llama_batch_free(self._batch)
            self._batch = None

    # --- one request on the calling thread -------------------------------------------
    def run_one(self, req: GenerationRequest) -> None:
        """Generate ``req`` to its end right here (the caller owns the model's thread)."""
        self._queue.append(req)
        while self._queue or any(s.busy for s in self.slots):
            try:
                self._admit()
                if any(s.busy for s in self.slots):
                    self._step()
            except Exception as exc:  # the reply fails; the caller's thread goes on
                log.exception("scheduler step failed")
                for s in self.slots:
                    if s.busy:
                        self._fail(s, exc)

    # --- the loop ---------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and not self._queue and not any(s.busy for s in self.slots):
                    self._cv.wait()
                if self._stopping and not any(s.busy for s in self.slots):
                    return
            try:
                self._admit()
                if any(s.busy for s in self.slots):
                    self._step()
            except Exception as exc:  # never let one bad step end the server
                log.exception("scheduler step failed")
                for s in self.slots:
                    if s.busy:
                        self._fail(s, exc)

    def _admit(self) -> None:
        while True:
            free = [s for s in self.slots if not s.busy]
            if not free:
                return
            with self._cv:
                if not self._queue:
                    return
                req = self._queue.popleft()
            if req.handle.cancelled:
                self._count("cancelled")
                _emit(req, "error", EngineError("The request was cancelled before it started."))
                continue
            try:
                prompt, stats = self._prepare_prompt(req)
            except Exception as exc:
                self._count("errors")
                _emit(req, "error", exc)
                continue
            self._count("requests")
            slot = max(free, key=lambda s: (common_prefix_len(s.cache, prompt), -s.last_used))
            self._begin(slot, req, prompt, stats)

    def _prepare_prompt(self, req: GenerationRequest) -> tuple[list[int], ReplyStats]:
        b = self.backend
        params = req.params
        n_ctx = self.slot_ctx
        reserve = reply_reserve(params.max_tokens, n_ctx)
        if req.prompt is not None:
            prompt = b.with_bos(b.tokenize(req.prompt))
            if len(prompt) + reserve > n_ctx:
                raise ContextLengthExceeded(len(prompt), n_ctx, reserve)
            return prompt, ReplyStats(n_ctx=n_ctx, prompt_tokens=len(prompt))
        tvars = req.template_vars
        try:
            fit = fit_history(list(req.messages), n_ctx=n_ctx, reserve=reserve,
                              count_prompt=lambda msgs: len(b.prompt_tokens(msgs, **tvars)),
                              count_text=b.count_tokens)
        except MessageTooLongError as exc:
            raise ContextLengthExceeded(exc.needed, n_ctx, reserve) from None
        if fit.dropped and req.strict:
            full = len(b.prompt_tokens(list(req.messages), **tvars))
            raise ContextLengthExceeded(full, n_ctx, reserve)
        prompt = b.prompt_tokens(fit.messages, **tvars)
        return prompt, ReplyStats(n_ctx=n_ctx, prompt_tokens=len(prompt), dropped=fit.dropped)

    def _begin(self, slot: _Slot, req: GenerationRequest, prompt: list, stats: ReplyStats) -> None:
        from engine.sampling import build_sampler

        rt = self.rt
        keep = min(common_prefix_len(slot.cache, prompt), len(prompt) - 1)
        rt.kv_remove(keep, -1, seq=slot.seq)
        slot.cache = list(prompt[:keep])
        try:
            slot.sampler = build_sampler(req.params, rt.n_vocab, grammar=req.grammar, vocab=rt.vocab)
        except ValueError as exc:
            self._count("errors")
            _emit(req, "error", EngineError(f"The response format could not be enforced: {exc}."))
            return
        slot.req = req
        slot.todo = list(prompt[keep:])
        slot.pending = None
        slot.utf8 = Utf8Stream()
        slot.stops = StopStringFilter(req.params.stop)
        stats.gpu_layers = getattr(self.backend, "gpu_layers", 0)
        stats.prompt_evaluated = len(slot.todo)
        slot.stats = stats
        slot.limit = max(0, min(req.params.max_tokens, self.slot_ctx - len(prompt)))
        slot.t0 = time.perf_counter()
        slot.t_gen = 0.0
        _emit(req, "start", stats)

    def _step(self) -> None:
        llama_cpp = self._llama
        rt = self.rt
        b = self._batch
        # Cancelled replies end before anything more is spent on them.
        for s in self.slots:
            if s.busy and s.req.handle.cancelled:
                self._finish(s, "cancelled")
        rows: list[tuple[_Slot, int]] = []
        n = 0
        generating = 0
        for s in self.slots:
            if s.busy and s.pending is not None:
                _put(b, n, s.pending, len(s.cache), s.seq, True)
                s.cache.append(s.pending)
                s.pending = None
                rows.append((s, n))
                n += 1
                generating += 1
        for s in self.slots:
            if not s.busy or not s.todo or n >= self._batch_cap:
                continue
            take = min(len(s.todo), self._batch_cap - n)
            chunk, s.todo = s.todo[:take], s.todo[take:]
            for i, tok in enumerate(chunk):
                last = not s.todo and i == take - 1
                _put(b, n, tok, len(s.cache), s.seq, last)
                s.cache.append(tok)
                if last:
                    rows.append((s, n))
                n += 1
        if n == 0:
            return
        b.n_tokens = n
        rc = llama_cpp.llama_decode(rt.ctx, b)
        if rc != 0:
            raise EngineError(f"llama.cpp could not evaluate the batch (code {rc}).")
        with self._lock:
            c = self.counters
            c["decodes"] += 1
            c["tokens"] += generating
            if generating >= 2:
                c["multi_sequence_decodes"] += 1
            c["max_sequences_in_batch"] = max(c["max_sequences_in_batch"], len(rows))
        for s, row in rows:
            self._sample(s, row)

    def _sample(self, s: _Slot, row: int) -> None:
        rt = self.rt
        stats = s.stats
        if s.t_gen == 0.0:
            s.t_gen = time.perf_counter()
            ev = stats.prompt_evaluated
            stats.prompt_tps = ev / (s.t_gen - s.t0) if ev and s.t_gen > s.t0 else None
        if s.req.handle.cancelled:
            self._finish(s, "cancelled")
            return
        tok = self._llama.llama_sampler_sample(s.sampler, rt.ctx, row)
        if rt.is_eog(tok):
            self._finish(s, "eog")
            return
        stats.gen_tokens += 1
        text = s.stops.feed(s.utf8.feed(rt.piece(tok)))
        if text:
            if stats.ttft_s is None:
                stats.ttft_s = time.perf_counter() - s.t0
            _emit(s.req, "text", text)
        if s.stops.stopped:
            self._finish(s, "stop_string")
        elif stats.gen_tokens >= s.limit:
            self._finish(s, "length")
        else:
            s.pending = tok

    def _finish(self, s: _Slot, reason: str) -> None:
        stats = s.stats
        if reason in ("eog", "length"):
            tail = s.stops.feed(s.utf8.flush()) + s.stops.flush()
            if tail:
                _emit(s.req, "text", tail)
        if reason == "cancelled":
            self._count("cancelled")
        stats.stop_reason = reason
        elapsed = time.perf_counter() - s.t_gen if s.t_gen else 0.0
        stats.gen_tps = stats.gen_tokens / elapsed if stats.gen_tokens and elapsed > 0 else None
        stats.ctx_used = len(s.cache)
        if s.todo:  # cancelled while reading the prompt: the cache holds only what was read
            s.todo = []
        req = s.req
        self._release(s)
        _emit(req, "done", stats)

    def _fail(self, s: _Slot, exc: Exception) -> None:
        req = s.req
        self._count("errors")
        # What the failed step put in the cache is unknown: forget this sequence.
        self.rt.kv_remove(-1, -1, seq=s.seq)
        s.cache = []
        self._release(s)
        _emit(req, "error", exc)

    def _release(self, s: _Slot) -> None:
        if s.sampler is not None:
            self._llama.llama_sampler_free(s.sampler)
            s.sampler = None
        s.req = None
        s.pending = None
        s.todo = []
        s.last_used = time.monotonic()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    import numpy as np

    return common_prefix(np.asarray(a, dtype=np.int32), np.asarray(b, dtype=np.int32))


def _put(b, i: int, tok: int, pos: int, seq: int, logits: bool) -> None:
    b.token[i] = tok
    b.pos[i] = pos
    b.n_seq_id[i] = 1
    b.seq_id[i][0] = seq
    b.logits[i] = 1 if logits else 0


def _emit(req: GenerationRequest, kind: str, value) -> None:
    try:
        req.on_event(kind, value)
    except Exception:  # a front end's callback must not break other replies
        log.exception("request event handler failed")
