"""No traceback on screen or on stderr: what the window does with an error nobody caught.

A ``UserError`` (a full disk and an unreadable file count as well) is shown as its
sentence in the window's status bar. Anything else is a bug: its traceback goes to
the logs folder (``common.errors.log_traceback``) and a message box says where.
``--debug`` / ``LLAMADESK_DEBUG=1`` also print the traceback to stderr.
"""
from __future__ import annotations

import os
import sys
import threading
import traceback

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox

from common.errors import log_traceback, unexpected_message, user_message

_boxes: list = []


def debug_enabled() -> bool:
    return "--debug" in sys.argv or os.environ.get("LLAMADESK_DEBUG", "").strip() not in ("", "0")


def install() -> None:
    """Route uncaught exceptions (GUI thread and Python threads) here instead of stderr."""
    sys.excepthook = handle
    threading.excepthook = lambda args: handle(args.exc_type, args.exc_value, args.exc_traceback,
                                               gui_thread=False)


def handle(exc_type, exc, tb, gui_thread: bool = True) -> None:
    if exc is None:
        exc = exc_type()
    if issubclass(exc_type, KeyboardInterrupt):
        app = QApplication.instance()
        if app is not None:
            app.quit()
        return
    if debug_enabled():
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
    message = user_message(exc)
    known = message is not None
    if not known:
        exc.__traceback__ = tb
        message = unexpected_message(exc, log_traceback(exc, context="window"))
    if gui_thread:
        show(message, known)
    else:
        # widgets belong to the GUI thread: hand the message over to it
        app = QApplication.instance()
        if app is not None:
            QTimer.singleShot(0, app, lambda: show(message, known))


def show(message: str, known: bool) -> None:
    window = _main_window()
    if known and window is not None:
        window.statusBar().showMessage(message, 10000)
        return
    box = QMessageBox(QMessageBox.Warning, "LlamaDesk", message[0].upper() + message[1:], parent=window)
    box.setObjectName("ErrorReport")
    _boxes.append(box)
    box.finished.connect(lambda _r, b=box: _boxes.remove(b) if b in _boxes else None)
    box.open()


def _main_window():
    app = QApplication.instance()
    if app is None:
        return None
    active = app.activeWindow()
    if isinstance(active, QMainWindow):
        return active
    for w in app.topLevelWidgets():
        if isinstance(w, QMainWindow) and w.isVisible():
            return w
    return None
