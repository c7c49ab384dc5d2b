"""Walking skeleton: type, press Enter, watch a real model's reply stream; Stop works."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from engine.types import GenerationParams

pytestmark = pytest.mark.usefixtures("one_engine_thread")


@pytest.fixture
def window(qtbot, smollm2_path):
    w = MainWindow(str(smollm2_path), n_ctx=2048)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.model_ready, timeout=120000)
    yield w
    w.close()


def test_enter_sends_and_reply_streams(qtbot, window):
    # the session samples with its own params: greedy there too, or the reply is random
    window.settings.params = GenerationParams(max_tokens=40, temperature=0.0, seed=1)
    pieces = []
    window.worker.token_received.connect(pieces.append)
    qtbot.keyClicks(window.composer, "What is the capital of France?")
    with qtbot.waitSignal(window.reply_completed, timeout=120000) as blocker:
        qtbot.keyClick(window.composer, Qt.Key_Return)
    assert blocker.args[0] in ("eog", "length")
    reply = window.history[-1]
    assert reply["role"] == "assistant" and reply["content"].strip()
    assert len(pieces) > 1
    assert "".join(pieces) == reply["content"]
    assert window.composer.toPlainText() == ""
    # as shown: Markdown paragraphs and line breaks render as single line ends
    assert " ".join(reply["content"].split()) in " ".join(window.chat_view.toPlainText().split())


def test_shift_enter_adds_a_line(qtbot, window):
    qtbot.keyClicks(window.composer, "one")
    qtbot.keyClick(window.composer, Qt.Key_Return, Qt.ShiftModifier)
    qtbot.keyClicks(window.composer, "two")
    assert window.composer.toPlainText() == "one\ntwo"
    assert window.history == []


def test_stop_ends_generation_within_a_couple_of_tokens(qtbot, window):
    window.settings.params = GenerationParams(max_tokens=2000, temperature=0.8, seed=7)
    counts = {"all": 0, "after_stop": 0}
    stopped = {"flag": False}

    def on_token(_piece):
        counts["all"] += 1
        if stopped["flag"]:
            counts["after_stop"] += 1

    window.worker.token_received.connect(on_token)
    window.send("Write a very long story about a llama who travels the world.")
    qtbot.waitUntil(lambda: counts["all"] >= 10, timeout=120000)
    with qtbot.waitSignal(window.reply_completed, timeout=30000) as blocker:
        stopped["flag"] = True
        qtbot.mouseClick(window.stop_button, Qt.LeftButton)
    assert blocker.args[0] == "cancelled"
    assert counts["after_stop"] <= 3, counts
    assert counts["all"] < 2000
    assert not window.generating and window.send_button.isEnabled()
