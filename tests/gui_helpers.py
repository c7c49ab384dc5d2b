"""Helpers of the GUI tests; their fixtures (one_engine_thread, make_window) are in conftest.py."""
from __future__ import annotations


def send_and_wait(qtbot, window, text: str, timeout: int = 120000) -> str:
    with qtbot.waitSignal(window.reply_completed, timeout=timeout) as blocker:
        window.send(text)
    return blocker.args[0]


def active_path(window):
    return window.store.active_path(window.session.conversation_id)
