"""Shared pieces of the GUI tests: a window on SmolLM2 that always closes."""
from __future__ import annotations

import pytest

from app.main_window import MainWindow
from common.inference_options import LoadOptions
from common.settings import Settings, save_settings
from engine.types import GenerationParams


@pytest.fixture(autouse=True)
def one_engine_thread():
    """llama.cpp on one thread: the GUI thread keeps a core, and a busy machine cannot
    stall a multi-thread barrier (with 2 threads on a loaded 2-core box, 50x slower)."""
    save_settings(Settings(load=LoadOptions(threads=1)))


@pytest.fixture
def make_window(qtbot, smollm2_path):
    """make_window(n_ctx=2048, max_tokens=24, **kw) -> a shown MainWindow with SmolLM2 loaded,
    replying greedily with at most max_tokens tokens (None: with the saved settings)."""
    made = []

    def make(n_ctx: int = 2048, max_tokens: int = 24, **kw):
        w = MainWindow(str(smollm2_path), n_ctx=n_ctx, **kw)
        qtbot.addWidget(w)
        made.append(w)
        w.show()
        qtbot.waitUntil(lambda: w.model_ready, timeout=60000)
        # the count made at load has arrived, so a test waiting for the next one gets its own
        qtbot.waitUntil(lambda: "tokens" in w.context_meter.label.text(), timeout=60000)
        if max_tokens is not None:      # None: sample as the saved settings say
            w.settings.params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=1)
        return w

    yield make
    for w in made:
        w.close()


def send_and_wait(qtbot, window, text: str, timeout: int = 120000) -> str:
    with qtbot.waitSignal(window.reply_completed, timeout=timeout) as blocker:
        window.send(text)
    return blocker.args[0]


def active_path(window):
    return window.store.active_path(window.session.conversation_id)
