"""The engine worker re-reads a shifted cache exactly while idle, a chunk per event-loop turn."""
from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from app.engine_worker import EngineWorker, LoadRequest
from app.threads import WorkerThread
from common.inference_options import LoadOptions
from engine.types import ChatMessage, GenerationParams


class Requests(QObject):
    load = Signal(object)
    generate = Signal(list, object)
    shutdown = Signal()


def test_idle_rebuild_after_a_shift_and_a_request_meanwhile(qtbot, smollm2_path):
    worker, thread, asks = EngineWorker(n_ctx=256), WorkerThread("engine-idle-test"), Requests()
    worker.moveToThread(thread)
    asks.load.connect(worker.load_model)
    asks.generate.connect(worker.generate)
    asks.shutdown.connect(worker.shutdown)
    refreshed = []
    worker.cache_refreshed.connect(lambda: refreshed.append(worker.backend.cache_exact))
    thread.start()
    try:
        with qtbot.waitSignal(worker.model_loaded, timeout=60000):
            asks.load.emit(LoadRequest(str(smollm2_path), LoadOptions(n_ctx=256, threads=1)))
        params = GenerationParams(max_tokens=4, temperature=0.0)
        msgs = [ChatMessage("system", "You are brief.")]
        turn = 0
        while worker.backend.shift_count == 0:
            assert turn < 30, "the window never overflowed"
            msgs.append(ChatMessage("user", f"Turn {turn}: tell me one fact about the number {turn + 7}."))
            with qtbot.waitSignal(worker.reply_finished, timeout=60000):
                asks.generate.emit(list(msgs), params)
            msgs.append(ChatMessage("assistant", "ok"))
            turn += 1
        # The shift left the cache approximate; idle, the worker makes it exact again.
        qtbot.waitUntil(lambda: bool(refreshed), timeout=60000)
        assert refreshed == [True] and worker.backend.cache_exact

        # Shift again, then ask while a chunk of the re-read is running: the queued request
        # runs before the next chunk.
        events, chunk_running, request_queued = [], threading.Event(), threading.Event()
        backend = worker.backend
        real_rebuild, real_stream = backend.rebuild_cache, backend.stream_chat

        def rebuild(handle=None, chunk=64):    # on the worker thread
            chunk_running.set()
            request_queued.wait(60)
            exact = real_rebuild(handle, chunk=chunk)
            events.append(("chunk", exact))
            return exact

        def stream_chat(*args, **kwargs):
            events.append("reply")
            return real_stream(*args, **kwargs)

        worker.IDLE_REBUILD_CHUNK = 4          # many chunks, so one is certainly left
        backend.rebuild_cache, backend.stream_chat = rebuild, stream_chat
        shifts = worker.backend.shift_count
        while worker.backend.shift_count == shifts:
            msgs.append(ChatMessage("user", f"Turn {turn}: and about {turn + 11}?"))
            with qtbot.waitSignal(worker.reply_finished, timeout=60000):
                asks.generate.emit(list(msgs), params)
            msgs.append(ChatMessage("assistant", "ok"))
            turn += 1
        events.clear()
        qtbot.waitUntil(chunk_running.is_set, timeout=60000)
        msgs.append(ChatMessage("user", "One more, please."))
        with qtbot.waitSignal(worker.reply_finished, timeout=60000) as done:
            asks.generate.emit(list(msgs), params)
            request_queued.set()
        assert done.args[0] in ("eog", "length")
        # the chunk under way when the request came finished, left the cache approximate,
        # and the reply came next: no second chunk ran ahead of it
        assert events[:2] == [("chunk", False), "reply"], events
    finally:
        worker.stop()
        asks.shutdown.emit()
        thread.stop_and_wait()
