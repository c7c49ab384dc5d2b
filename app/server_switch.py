"""The window's "Serve on localhost:PORT" switch: the window's own model answers API calls.

The status bar holds a checkable button that is both the switch and the indicator
("Serving on localhost:7453 · 3 requests"); its state and port live in the settings
file (``serve_on``, ``serve_port``), so the window serves again when reopened.

One model in memory: an API request is handed to the engine worker's thread through
a queued signal, exactly like the window's own "generate", so window chats and API
requests take turns in the order they came (Qt delivers queued calls in order), and
the GUI thread does nothing but count. On the worker thread the request runs through
the engine's ``BatchScheduler.run_one`` in KV sequence 1, next to the window's
conversation in sequence 0, which stays cached (it is only dropped when it fills
more than half the window, to leave the request room). HTTP runs on uvicorn's own
thread (``server.run.Server``).
"""
from __future__ import annotations

import logging
import threading
from typing import Optional

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QToolButton

from common.settings import save_settings
from engine.backend import EngineError

log = logging.getLogger(__name__)

API_SEQ = 1


class WindowModelService:
    """The server's model service over the window's engine worker (see server.app)."""

    def __init__(self, post):
        self._post = post                    # hands a request to the worker thread
        self.name = ""
        self.model_path = ""
        self.slot_ctx = 0
        self.template_source = ""
        self._lock = threading.Lock()
        self._open: set = set()
        self.counters = dict(requests=0, decodes=0, tokens=0, multi_sequence_decodes=0,
                             max_sequences_in_batch=0, cancelled=0, errors=0)

    def set_model(self, info, template_source: str) -> None:
        self.name, self.model_path, self.slot_ctx = info.name, info.path, info.n_ctx
        self.template_source = template_source or ""

    def submit(self, req) -> None:
        if not self.name:
            raise EngineError("No model is loaded in the window yet.")
        with self._lock:
            self._open.add(req)
        self._post(req)

    def finished(self, req) -> None:
        with self._lock:
            self._open.discard(req)

    def cancel_all(self) -> None:
        with self._lock:
            for req in self._open:
                req.handle.cancel()

    def snapshot(self) -> dict:
        with self._lock:
            active = len(self._open)
        return dict(self.counters, active=active, queued=0, parallel=1, slot_ctx=self.slot_ctx)


class ApiRunner(QObject):
    """Lives on the engine worker's thread; runs API requests on the window's model."""

    def __init__(self, worker, service: WindowModelService):
        super().__init__()
        self._worker = worker
        self._service = service
        self._scheduler = None
        self._for_backend = None

    @Slot(object)
    def run(self, req) -> None:
        try:
            backend = self._worker.backend
            if backend is None or not backend.local:
                req.on_event("error", EngineError(
                    "The window has no local model loaded (a remote server cannot be served again)."))
                return
            sched = self._scheduler_for(backend)
            rt = backend.runtime
            rt.kv_remove(-1, -1, seq=API_SEQ)
            sched.slots[0].cache = []
            if len(backend.cache_tokens) > backend.n_ctx // 2:
                backend.reset_cache()        # leave the request at least half the window
            sched.slot_ctx = backend.n_ctx - len(backend.cache_tokens)
            try:
                sched.run_one(req)
            finally:
                rt.kv_remove(-1, -1, seq=API_SEQ)
                sched.slots[0].cache = []
                for key in self._service.counters:
                    self._service.counters[key] = sched.counters.get(key, 0)
        except Exception as exc:  # never into Qt: the request fails, the window goes on
            log.exception("API request failed in the window")
            req.on_event("error", exc)
        finally:
            self._service.finished(req)

    def _scheduler_for(self, backend):
        from engine.scheduler import BatchScheduler

        if self._for_backend is not backend:
            if self._scheduler is not None:
                self._scheduler.close()
            self._scheduler = BatchScheduler(backend, parallel=1, slot_ctx=backend.n_ctx, seq_ids=[API_SEQ])
            self._for_backend = backend
        return self._scheduler

    @Slot()
    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.close()
            self._scheduler = None
            self._for_backend = None


class ServerSwitch(QObject):
    """The switch, its status-bar button, and the server it starts and stops."""

    serving_changed = Signal(bool)
    """The server started (True) or stopped (False)."""
    request_counted = Signal(int)
    """An API request arrived; the argument is how many so far."""
    _request_posted = Signal(object)
    _shutdown_requested = Signal()

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.server = None
        self.port: Optional[int] = None
        self.requests = 0
        self.service = WindowModelService(self._request_posted.emit)
        self.runner = ApiRunner(window.worker, self.service)
        self.runner.moveToThread(window.thread)
        self._request_posted.connect(self.runner.run)
        self._shutdown_requested.connect(self.runner.shutdown)
        self.button = QToolButton()
        self.button.setObjectName("serveSwitch")
        self.button.setCheckable(True)
        self.button.setAutoRaise(True)
        self.button.setToolTip("Let other programs (editors, scripts) use this model through an "
                               "OpenAI- or Ollama-compatible API on this computer only.")
        self.button.toggled.connect(self._on_button_toggled)
        self.request_counted.connect(self._on_request_counted)
        window.worker.model_loaded.connect(self._on_model_loaded)
        window.statusBar().addPermanentWidget(self.button)
        self._show()
        if window.settings.serve_on:
            self.button.setChecked(True)

    # --- the switch -------------------------------------------------------------
    @property
    def serving(self) -> bool:
        return self.server is not None

    def _on_button_toggled(self, on: bool) -> None:
        if on and not self.serving:
            self.start()
        elif not on and self.serving:
            self.stop()
        settings = self.window.settings
        if settings.serve_on != self.serving:
            settings.serve_on = self.serving
            save_settings(settings)

    def start(self) -> bool:
        from server.app import ApiState, build_app
        from server.run import Server, ServerConfigError, bind

        try:
            sock = bind("127.0.0.1", self.window.settings.serve_port, None)
        except ServerConfigError as exc:
            self.window.statusBar().showMessage(str(exc), 10000)
            self._check_button(False)
            return False
        self.port = sock.getsockname()[1]
        self.requests = 0
        state = ApiState(self.service, on_request=self.request_counted.emit)
        self.server = Server(build_app(state), sock, on_stop=self.service.cancel_all)
        self.server.start()
        self._check_button(True)
        self._show()
        self.serving_changed.emit(True)
        return True

    def stop(self) -> None:
        if self.server is None:
            return
        server, self.server = self.server, None
        # Replies in flight are cancelled at once; a stream still waiting for the worker
        # (busy with the window's own reply) ends on uvicorn's thread, not the GUI's.
        server.stop(timeout=1.0)
        self._check_button(False)
        self._show()
        self.serving_changed.emit(False)

    def apply_settings(self, before: tuple) -> None:
        """The settings changed (the dialog, which saved them): start, stop, or change port."""
        settings = self.window.settings
        if self.serving and (not settings.serve_on or before[1] != settings.serve_port):
            self.stop()
        if settings.serve_on and not self.serving:
            self.start()
        self._show()

    def shutdown(self) -> None:
        """Before the window closes: stop serving, free the runner's batch on its thread."""
        self.stop()
        self._shutdown_requested.emit()

    # --- what the button says ----------------------------------------------------------
    def _check_button(self, on: bool) -> None:
        """Show the state without it counting as a click (a click saves the setting)."""
        self.button.blockSignals(True)
        self.button.setChecked(on)
        self.button.blockSignals(False)

    def _show(self) -> None:
        port = self.port if self.serving else self.window.settings.serve_port
        if self.serving:
            n = self.requests
            self.button.setText(f"Serving on localhost:{port} · {n} request{'s' if n != 1 else ''}")
        else:
            self.button.setText(f"Serve on localhost:{port or 'any port'}")
        self.button.setAccessibleName(self.button.text())

    def _on_request_counted(self, n: int) -> None:
        self.requests = n
        self._show()

    def _on_model_loaded(self, info) -> None:
        if info.remote:
            self.service.name = ""
            return
        backend = self.window.worker.backend     # a local model: its engine.templates.ChatTemplate
        template = backend.template if backend is not None and backend.local else None
        self.service.set_model(info, template.source if template is not None else "")
