"""The engine worker hands each reply's statistics to the window with the signal that
ends it, and a full window reaches the user as one sentence."""
from __future__ import annotations

from app.engine_worker import EngineWorker, LoadRequest
from common.inference_options import LoadOptions
from engine.types import ChatMessage, GenerationParams, ReplyStats


def test_reply_statistics_travel_with_the_finished_and_failed_signals(qtbot, smollm2_path):
    worker = EngineWorker()
    with qtbot.waitSignal(worker.model_loaded, timeout=60000) as loaded:
        worker.load_model(LoadRequest(str(smollm2_path), LoadOptions(n_ctx=256, gpu_layers=0, threads=1)))
    assert loaded.args[0].n_ctx == 256 and loaded.args[0].gpu_plan     # the engine's own plan text
    try:
        with qtbot.waitSignal(worker.reply_finished, timeout=60000) as done:
            worker.generate([ChatMessage("user", "Count to ten.")], GenerationParams(max_tokens=3, temperature=0.0))
        reason, stats = done.args
        assert reason == "length" and isinstance(stats, ReplyStats) and stats.gen_tokens == 3
        assert not hasattr(worker, "last_stats")      # nothing to read across threads

        with qtbot.waitSignal(worker.reply_failed, timeout=60000) as failed:
            worker.generate([ChatMessage("user", "word " * 400)], GenerationParams(max_tokens=3))
        message, stats = failed.args
        assert "too long for the context window" in message and "Traceback" not in message
    finally:
        worker.shutdown()
