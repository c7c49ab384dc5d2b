"""The main window: transcript, composer, Send/Stop, and the model in use."""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QMainWindow, QPushButton,
                               QTextBrowser, QVBoxLayout, QWidget)

from app.composer import Composer
from app.engine_worker import EngineWorker
from app.threads import WorkerThread
from engine.types import GenerationParams


class MainWindow(QMainWindow):
    _load_requested = Signal(str)
    _generate_requested = Signal(list, object)
    _shutdown_requested = Signal()

    reply_completed = Signal(str)
    """A reply finished streaming (argument: stop reason); for tests and status."""

    def __init__(self, model_path: Optional[str] = None, n_ctx: int = 8192):
        super().__init__()
        self.setWindowTitle("LlamaDesk")
        self.resize(900, 700)
        self.history: list[dict] = []
        self.params = GenerationParams()
        self._reply = ""
        self.generating = False

        self.transcript = QTextBrowser()
        self.transcript.setAccessibleName("Conversation")
        self.transcript.setOpenExternalLinks(True)
        self.composer = Composer()
        self.composer.setFixedHeight(90)
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("Send message")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop generating")
        self.stop_button.setEnabled(False)
        self.model_label = QLabel("No model")

        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row = QHBoxLayout()
        row.addWidget(self.composer, 1)
        row.addLayout(buttons)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.transcript, 1)
        layout.addLayout(row)
        self.setCentralWidget(central)
        self.statusBar().addPermanentWidget(self.model_label)

        self.composer.submitted.connect(self._on_composer_submitted)
        self.send_button.clicked.connect(self._on_send_clicked)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        QShortcut(QKeySequence(Qt.Key_Escape), self, activated=self._on_stop_clicked)

        self.worker = EngineWorker(n_ctx=n_ctx)
        self.thread = WorkerThread("engine", self)
        self.worker.moveToThread(self.thread)
        self._load_requested.connect(self.worker.load_model)
        self._generate_requested.connect(self.worker.generate)
        self._shutdown_requested.connect(self.worker.shutdown)
        self.worker.model_loaded.connect(self._on_model_loaded)
        self.worker.model_load_failed.connect(self._on_model_load_failed)
        self.worker.token_received.connect(self._on_token_received)
        self.worker.reply_finished.connect(self._on_reply_finished)
        self.worker.reply_failed.connect(self._on_reply_failed)
        self.thread.start()
        self.model_ready = False
        if model_path:
            self.load_model(model_path)
        else:
            self.statusBar().showMessage("No model found: add one in the model manager.")

    # model ----------------------------------------------------------------
    def load_model(self, path: str) -> None:
        self.model_ready = False
        self.model_label.setText("Loading…")
        self.send_button.setEnabled(False)
        self._load_requested.emit(path)

    def _on_model_loaded(self, path: str) -> None:
        from pathlib import Path

        self.model_ready = True
        self.model_label.setText(Path(path).stem)
        self.send_button.setEnabled(True)
        self.statusBar().showMessage("Ready", 3000)

    def _on_model_load_failed(self, message: str) -> None:
        self.model_label.setText("No model")
        self.statusBar().showMessage(message)

    # chat -----------------------------------------------------------------
    def send(self, text: str) -> None:
        if self.generating or not self.model_ready or not text.strip():
            return
        self.composer.clear()
        self.history.append({"role": "user", "content": text})
        self._append_block("You", text)
        self._append_block("Assistant", "")
        self._reply = ""
        self.generating = True
        self.send_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._generate_requested.emit(list(self.history), self.params)

    def _on_composer_submitted(self, text: str) -> None:
        self.send(text)

    def _on_send_clicked(self) -> None:
        self.send(self.composer.toPlainText())

    def _on_stop_clicked(self) -> None:
        if self.generating:
            self.worker.stop()

    def _on_token_received(self, piece: str) -> None:
        self._reply += piece
        cursor = self.transcript.textCursor()
        cursor.movePosition(QTextCursor.End)
        cursor.insertText(piece)
        self.transcript.ensureCursorVisible()

    def _finish_reply(self) -> None:
        self.generating = False
        self.send_button.setEnabled(self.model_ready)
        self.stop_button.setEnabled(False)
        if self._reply:
            self.history.append({"role": "assistant", "content": self._reply})

    def _on_reply_finished(self, reason: str) -> None:
        self._finish_reply()
        if reason == "cancelled":
            self.statusBar().showMessage("Stopped", 3000)
        self.reply_completed.emit(reason)

    def _on_reply_failed(self, message: str) -> None:
        self._finish_reply()
        self._append_block("Error", message)
        self.reply_completed.emit("error")

    def _append_block(self, who: str, text: str) -> None:
        cursor = self.transcript.textCursor()
        cursor.movePosition(QTextCursor.End)
        if not self.transcript.document().isEmpty():
            cursor.insertBlock()
            cursor.insertBlock()
        cursor.insertHtml(f"<b>{who}</b>")
        cursor.insertBlock()
        cursor.insertText(text)

    # lifetime -------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.worker.stop()
        self._shutdown_requested.emit()
        self.thread.stop_and_wait()
        super().closeEvent(event)
