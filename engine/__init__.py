"""Inference: llama.cpp and remote backends, chat templates, the context window.

API in brief (every call from one owner thread; only ``TaskHandle.cancel`` from elsewhere):

    from engine import open_backend
    from common.inference_options import LoadOptions
    from engine.types import ChatMessage, GenerationParams

    b = open_backend(path_or_url, LoadOptions(n_ctx=4096, gpu_layers="auto", threads=0), handle=handle)
                                    # a GGUF: validated, GPU offload planned, retried with fewer
                                    # layers when GPU memory runs out; a URL: a RemoteBackend.
                                    # Both are an engine.backend.Backend (the whole protocol).
    b.plan_text                     # "all 33 layers on RTX 4070 (12 GB): weights 4.6 GB, ..."
    b.gpu_plan                      # engine.gpu_plan.OffloadPlan (numbers behind the text)
    for piece in b.stream_chat(messages, GenerationParams(...), handle):
        ...                         # whole UTF-8 characters; ends on EOG, stop string, length, cancel
                                    # messages ending with an assistant message continue that
                                    # reply from its last character (what "Continue" sends)
    b.last_stats                    # ReplyStats: ttft_s, prompt_tokens, prompt_evaluated, prompt_tps,
                                    # gen_tokens, gen_tps, ctx_used, n_ctx, gpu_layers, stop_reason,
                                    # dropped; limited_by/length_limit when it hit a length limit
    b.last_fit                      # FitResult of that reply
    b.count_tokens(text), b.tokenize(text), b.fit_history(messages, params)
    b.evaluated_tokens              # every token llama.cpp evaluated since load
    b.unload()

Which messages were dropped: before each reply the history is fitted into ``n_ctx``
(system prompt and latest user message always stay; oldest whole turns go first).
``last_stats.dropped`` and ``last_fit.dropped`` hold the indices, into the list the
caller passed, of the messages left out; ``fit_history`` tells in advance. A message
too large for the window raises ``engine.backend.MessageTooLongError``, a
``ContextOverflowError`` (what every backend raises when a conversation cannot fit; an
``EngineError`` whose text is meant for the user).

Dropped turns are cut out of the KV cache and the rest shifted, so kept history is
never re-evaluated; ``last_stats.prompt_evaluated`` says what was. ``reset_cache()``
forces an exact re-read on the next reply. A shifted cache is close to, not exactly,
what a full read gives (``cache_exact`` is False): while the model is idle the owner
may call ``rebuild_cache(handle)``, which re-reads the shifted part in place, a chunk
at a time; cancel its handle when a new request comes and it stops within one chunk,
leaving a whole, usable cache.

Each conversation's cache can be kept (``engine.snapshots``): ``b.enable_snapshots()``
(cache folder, disk budget), then ``b.conversation = "12"`` says which conversation the
next reply belongs to, ``b.save_snapshot()`` after a reply keeps it (RAM at once, the
file on a writer thread), ``b.restore_for(messages)`` brings one back when a
conversation is opened; every reply also restores, before evaluating, the snapshot its
prompt reuses most when that beats the live cache (``b.last_restore``,
``last_stats.extra["snapshot"]``). Damaged or foreign snapshots are removed, never used.

On the CPU, flash attention is off unless asked for: llama.cpp's CPU kernel is faster
only for large prompt batches and 2-3x slower for generation at cache depth.

Several replies at once (the local server): ``engine.scheduler.BatchScheduler(backend,
parallel=N, slot_ctx=...)`` over a backend loaded with ``n_seq_max=N`` and ``n_ctx=N * slot_ctx``
decodes one llama_batch per step holding every active slot's next token; requests are
``GenerationRequest``s whose events (start, text, done/error) come back through a callback.

``engine.remote_backend.RemoteBackend(base_url, api_key=..., model=None, n_ctx=0)`` offers
the same calls against an OpenAI-compatible server (TLS verified, key never logged).
"""

from engine.opening import open_backend  # noqa: E402,F401 - the one way to open a model
