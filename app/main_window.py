"""The main window: conversations on the left, the chat on the right, the composer below."""
from __future__ import annotations

import logging
from typing import Optional

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QApplication, QHBoxLayout, QLabel, QMainWindow, QPushButton,
                               QSplitter, QVBoxLayout, QWidget)

from app import theme, window_state
from app.chat.chat_view import ChatView
from app.chat.session import ChatSession
from app.composer import Composer
from app.conversation_memory import ConversationMemory
from app.engine_worker import EngineWorker, LoadRequest
from app.server_switch import ServerSwitch
from models.choices import available_models, display_name, find_remote, remote_name
from app.shortcuts import SHORTCUTS
from app.shortcut_actions import ShortcutActions
from app.sidebar.conversation_list import ConversationList
from app.sidebar.sidebar_actions import SidebarActions
from app.sidebar.trash_actions import TrashActions
from app.threads import BackgroundOp, WorkerThread
from app.widgets.context_meter import ContextMeter
from app.widgets.model_bar import ModelBar
from chat.records import ChatStoreError
from chat.store import ChatStore
from common.settings import Settings, load_settings, save_settings
from engine.context_window import reply_reserve

log = logging.getLogger(__name__)


class MainWindow(ShortcutActions, SidebarActions, TrashActions, QMainWindow):
    _load_requested = Signal(object)
    _generate_requested = Signal(list, object)
    _count_requested = Signal(list, str, int)
    _shutdown_requested = Signal()
    # How long closing waits for the engine thread to free the model: its unload waits at
    # most 70 s for a snapshot being written (engine.snapshots.SnapshotStore.close).
    ENGINE_STOP_WAIT_MS = 75000

    reply_completed = Signal(str)
    """A reply finished streaming (argument: stop reason); for tests and status."""
    context_updated = Signal(object)
    """The context meter shows a new ContextReport."""

    def __init__(self, model_path: Optional[str] = None, n_ctx: Optional[int] = None,
                 settings: Optional[Settings] = None, store: Optional[ChatStore] = None):
        super().__init__()
        self.setWindowTitle("LlamaDesk")
        self.setWindowIcon(theme.icon("llamadesk"))
        window_state.resize_within_screen(self, 1100, 740)
        self.settings = settings or load_settings()
        if n_ctx:
            self.settings.load.n_ctx = n_ctx
        self.theme = theme.apply(QApplication.instance(), self.settings.theme)
        self._owns_store = store is None
        self.store = store or ChatStore.open()
        self.model_ready = False
        self.model_info = None
        self._editing_id: Optional[int] = None
        self._dialogs: list = []
        self._downloads = None
        self._trash = None
        self._build()
        if self.store.read_only:
            self._show_read_only()
        self._connect_engine()
        self.memory = ConversationMemory(self)      # each conversation's saved KV cache
        self.server_switch = ServerSwitch(self)     # "Serve on localhost:PORT" in the status bar
        self._bind_shortcuts()
        window_state.restore(self, self.splitter)
        QApplication.instance().styleHints().colorSchemeChanged.connect(self._on_system_scheme_changed)
        self._refresh_conversations()
        last = window_state.conversation_to_open(self.store)   # as other chat apps do
        if last is not None:
            try:
                self.session.open(last)
            except Exception as exc:  # noqa: BLE001 - e.g. a damaged database opened read-only
                log.warning("could not open the last conversation", exc_info=True)
                self.session.conversation_id = None
                self.chat_view.set_messages([])
                self.statusBar().showMessage(
                    str(exc) if isinstance(exc, ChatStoreError)
                    else "The last conversation could not be opened; it may be damaged.", 10000)
        self._refresh_models(model_path or self.settings.active_model)
        first = model_path or self.settings.active_model or (self.model_bar.picker.currentData() or "")
        if first:
            self.load_model(first)
        else:
            self.statusBar().showMessage("No model yet: open Models… to download Llama 3.")

    # building -----------------------------------------------------------------
    def _build(self) -> None:
        self.sidebar = ConversationList()
        self.model_bar = ModelBar()
        self.chat_view = ChatView(self.theme)
        self.chat_view.setObjectName("ChatView")
        self.session = ChatSession(self.store, self.chat_view, self)
        self.session.system_prompt = self.settings.system_prompt
        self.session.settings = self.settings      # replies are sampled with settings.params
        self.edit_banner = QLabel("Editing your message: Enter saves it as a new branch, Esc cancels.")
        self.edit_banner.setObjectName("MutedLabel")
        self.edit_banner.hide()
        self.composer = Composer()
        self.composer.setObjectName("Composer")
        self.composer.setFixedHeight(96)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("PrimaryButton")
        self.send_button.setIcon(theme.icon("send", "dark"))
        self.send_button.setAccessibleName("Send message")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setIcon(theme.icon("stop", self.theme))
        self.stop_button.setAccessibleName("Stop generating")
        self.stop_button.setEnabled(False)
        self.context_meter = ContextMeter()
        self.model_label = QLabel("No model")
        self.model_label.setObjectName("MutedLabel")

        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.composer, 1)
        row.addLayout(buttons)
        right = QWidget()
        layout = QVBoxLayout(right)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.model_bar)
        layout.addWidget(self.chat_view, 1)
        bottom = QVBoxLayout()
        bottom.setContentsMargins(12, 8, 12, 8)
        bottom.addWidget(self.edit_banner)
        bottom.addLayout(row)
        meter_row = QHBoxLayout()
        meter_row.addWidget(self.context_meter)
        meter_row.addStretch(1)
        bottom.addLayout(meter_row)
        layout.addLayout(bottom)
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([260, 840])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)
        self.statusBar().addPermanentWidget(self.model_label)

        self._count_timer = QTimer(self, singleShot=True, interval=250)
        self._count_timer.timeout.connect(self._on_count_timer_timeout)
        self.composer.submitted.connect(self._on_composer_submitted)
        self.composer.textChanged.connect(self._count_timer.start)
        self.send_button.clicked.connect(self._on_send_clicked)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.sidebar.new_requested.connect(self.new_chat)
        self.sidebar.conversation_selected.connect(self._on_sidebar_conversation_selected)
        self.sidebar.search_hit_selected.connect(self._on_sidebar_hit_selected)
        self.sidebar.rename_requested.connect(self._on_sidebar_rename_requested)
        self.sidebar.pin_requested.connect(self._on_sidebar_pin_requested)
        self.sidebar.archive_requested.connect(self._on_sidebar_archive_requested)
        self.sidebar.delete_requested.connect(self.delete_chat)
        self.sidebar.system_prompt_requested.connect(self._on_sidebar_system_prompt_requested)
        self.sidebar.undo_delete_requested.connect(self.session.undo_delete)
        self.sidebar.search_changed.connect(self._on_sidebar_search_changed)
        self.sidebar.show_archived_changed.connect(lambda _on: self._refresh_conversations())
        self.sidebar.trash_requested.connect(self.open_trash)
        self.chat_view.edit_requested.connect(self._on_chat_edit_requested)
        self.chat_view.regenerate_requested.connect(self._on_chat_regenerate_requested)
        self.chat_view.continue_requested.connect(self._on_chat_continue_requested)
        self.chat_view.sibling_requested.connect(self._on_chat_sibling_requested)
        self.chat_view.copied.connect(lambda what: self.statusBar().showMessage(f"Copied the {what}.", 2000))
        self.session.reply_completed.connect(self._on_session_reply_completed)
        self.session.conversations_changed.connect(self._refresh_conversations)
        self.session.conversation_changed.connect(self._on_session_conversation_changed)
        self.session.error_shown.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        self.model_bar.model_chosen.connect(self._on_model_bar_model_chosen)
        self.model_bar.manage_requested.connect(self.open_model_manager)

    def _connect_engine(self) -> None:
        self.worker = EngineWorker(n_ctx=self.settings.load.n_ctx)
        self.thread = WorkerThread("engine", self)
        self.worker.moveToThread(self.thread)
        self._load_requested.connect(self.worker.load_model)
        self._generate_requested.connect(self.worker.generate)
        self._count_requested.connect(self.worker.count_context)
        self._shutdown_requested.connect(self.worker.shutdown)
        self.session.generation_requested.connect(self._generate_requested)
        self.worker.model_loaded.connect(self._on_model_loaded)
        self.worker.model_load_failed.connect(self._on_model_load_failed)
        self.worker.load_progressed.connect(self._on_model_load_progressed)
        self.worker.token_received.connect(self.session.on_token)
        self.worker.reply_finished.connect(self._on_reply_finished)
        self.worker.reply_failed.connect(self._on_reply_failed)
        self.worker.context_counted.connect(self._on_context_counted)
        self.thread.start()

    def _bind_shortcuts(self) -> None:
        for keys, action, _text in SHORTCUTS:
            if action:
                seq = QKeySequence(keys)
                QShortcut(seq, self, activated=getattr(self, action), context=Qt.WindowShortcut)

    def _show_read_only(self) -> None:
        self.composer.setReadOnly(True)
        self.composer.setPlaceholderText("Your chats are open read-only here: new messages cannot be saved.")

    def _refuse_if_read_only(self) -> bool:
        if self.store.read_only:
            self.statusBar().showMessage("Your chats are open read-only here: nothing can be changed.", 8000)
        return self.store.read_only

    # conversations ----------------------------------------------------------
    @property
    def history(self) -> list[dict]:
        """The active path of the current conversation, as role/content dicts."""
        if self.session.conversation_id is None:
            return []
        return [{"role": m.role, "content": m.content}
                for m in self.store.active_path(self.session.conversation_id)]

    @property
    def generating(self) -> bool:
        return self.session.generating

    def new_chat(self) -> None:
        if self.generating or self._refuse_if_read_only():
            return
        self.session.new_conversation()
        self.composer.setFocus()

    def delete_chat(self, conv_id: int) -> None:
        if self.generating and conv_id == self.session.conversation_id:
            return
        title = self.session.delete(conv_id)
        self.sidebar.show_undo(title)
        self._count_timer.start()   # the meter must not keep counting the deleted chat

    def _refresh_conversations(self) -> None:
        self.sidebar.set_trash_count(len(self.store.list(trash=True)))
        if self._trash is not None and self._trash.isVisible():
            self._trash.refresh()
        if self.sidebar.search.text().strip():
            return
        convs = self.store.list(include_archived=self.sidebar.show_archived.isChecked())
        self.sidebar.set_conversations(convs, self.session.conversation_id)

    def _on_session_conversation_changed(self, conv_id: int) -> None:
        self.sidebar.select(conv_id)
        self._count_timer.start()

    # sending ------------------------------------------------------------------
    def send(self, text: str) -> None:
        if self.generating or not self.model_ready or not text.strip() or self._refuse_if_read_only():
            return
        editing, self._editing_id = self._editing_id, None
        self.edit_banner.hide()
        self.composer.clear()
        self._set_generating(True)
        if editing is not None:
            self.session.edit(editing, text)
        else:
            self.session.send(text)

    def _on_composer_submitted(self, text: str) -> None:
        self.send(text)

    def _on_send_clicked(self) -> None:
        self.send(self.composer.toPlainText())

    def _on_stop_clicked(self) -> None:
        if self.generating:
            self.worker.stop()

    def _set_generating(self, on: bool) -> None:
        self.send_button.setEnabled(not on and self.model_ready)
        self.stop_button.setEnabled(on)

    def _on_reply_finished(self, reason: str, stats) -> None:
        self.session.on_finished(reason, stats)

    def _on_reply_failed(self, message: str, stats) -> None:
        self.session.on_failed(message, stats)

    def _on_session_reply_completed(self, reason: str) -> None:
        self._set_generating(False)
        if reason != "error":
            self._mark_welcome_done()
        if reason == "cancelled":
            self.statusBar().showMessage("Stopped", 3000)
        self._count_timer.start()
        self.reply_completed.emit(reason)

    def _on_chat_edit_requested(self, msg_id: str) -> None:
        if self.generating:
            return
        self._editing_id = int(msg_id)
        self.composer.setPlainText(self.store.get_message(int(msg_id)).content)
        self.edit_banner.show()
        self.composer.setFocus()

    def _on_chat_regenerate_requested(self, msg_id: str) -> None:
        if not self.generating and self.model_ready:
            self._set_generating(True)
            self.session.regenerate(int(msg_id))

    def _on_chat_continue_requested(self, msg_id: str) -> None:
        if not self.generating and self.model_ready:
            self._set_generating(True)
            self.session.continue_reply(int(msg_id))

    def _on_chat_sibling_requested(self, msg_id: str, delta: int) -> None:
        self.session.switch_sibling(int(msg_id), delta)
        self._count_timer.start()

    # context meter -------------------------------------------------------------
    def _on_count_timer_timeout(self) -> None:
        if not self.model_ready:
            return
        # while a message is edited, the draft takes its place and what followed it
        messages = self.session.engine_messages(self.session.path_before(self._editing_id))
        n_ctx = self.model_info.n_ctx if self.model_info else self.settings.load.n_ctx
        self._count_requested.emit(messages, self.composer.toPlainText(),
                                   reply_reserve(self.settings.params.max_tokens, n_ctx))

    def _on_context_counted(self, report) -> None:
        self.context_meter.show_report(report.used, report.n_ctx, report.dropped)
        if not self.generating:
            self.chat_view.set_memory_start(report.dropped or None)
        self.context_updated.emit(report)

    # models -----------------------------------------------------------------------
    def _refresh_models(self, current: str = "") -> None:
        self.model_bar.set_choices(available_models(self.settings),
                                   [s.name for s in self.settings.remote_servers], current)

    def load_model(self, path: str) -> None:
        if self.generating:
            return
        self.model_ready = False
        self.send_button.setEnabled(False)
        self.model_label.setText("Loading…")
        request_path, key, remote_model = path, "", ""
        if remote_name(path) is not None:
            server = find_remote(self.settings, path)
            if server is None:
                return
            request_path, key, remote_model = server.base_url, server.api_key, server.model
        self.model_bar.show_loading(display_name(path))
        self._load_requested.emit(LoadRequest(request_path, self.settings.load, api_key=key, model=remote_model,
                                              snapshot_budget_mb=self.settings.kv_cache_mb))
        self._pending_model = path

    def _on_model_bar_model_chosen(self, path: str) -> None:
        self.load_model(path)

    def _on_model_loaded(self, info) -> None:
        self.model_ready = True
        self.model_info = info
        self.session.model_name = info.name
        self.model_label.setText(info.name)
        self.model_bar.show_loaded(info)
        self.send_button.setEnabled(not self.generating)
        self.statusBar().showMessage("Ready", 3000)
        if getattr(self, "_pending_model", "") and self._pending_model != self.settings.active_model:
            self.settings.active_model = self._pending_model
            save_settings(self.settings)
        self._on_count_timer_timeout()   # the meter fills at once, conversation or not

    def _on_model_load_progressed(self, report) -> None:
        self.model_bar.show_load_progress(report.fraction)

    def _on_model_load_failed(self, message: str) -> None:
        self.model_label.setText("No model")
        self.model_bar.show_failed(message)
        self.statusBar().showMessage(message)

    # settings, theme, other windows -------------------------------------------------
    def apply_settings(self, settings: Settings) -> None:
        reload_needed = settings.load != self.settings.load
        save_settings(settings)
        serve_before = (self.settings.serve_on, self.settings.serve_port)
        if settings.kv_cache_mb != self.settings.kv_cache_mb:
            self.memory.budget_changed.emit(settings.kv_cache_mb)
        self.settings = settings
        self.server_switch.apply_settings(serve_before)
        self.session.settings = settings
        self.session.system_prompt = settings.system_prompt
        self.set_theme(settings.theme)
        self._refresh_models(settings.active_model)
        if reload_needed and settings.active_model and not self.generating:
            self.load_model(settings.active_model)

    def set_theme(self, name: str) -> None:
        self.theme = theme.apply(QApplication.instance(), name)
        self.chat_view.set_theme(self.theme)
        self.stop_button.setIcon(theme.icon("stop", self.theme))

    def _on_system_scheme_changed(self, _scheme) -> None:
        if self.settings.theme == "system":
            self.set_theme("system")

    def open_settings(self):
        from app.settings.settings_dialog import SettingsDialog
        from app.settings.token_store import save_token_in_background, token_hint

        dialog = SettingsDialog(self.settings, token_hint(), self)
        dialog.settings_saved.connect(self.apply_settings)
        dialog.cache_clear_requested.connect(self.memory.clear)
        dialog.token_saved.connect(
            lambda token: save_token_in_background(token, lambda msg: self.statusBar().showMessage(msg, 8000)))
        dialog.show()
        return dialog

    def open_model_manager(self):
        from app.models_manager.manager_window import ModelManagerWindow
        from app.settings.token_store import save_token_in_background

        if self._downloads is None:
            from app.models_manager.download_bridge import DownloadBridge
            from models.choices import models_folder

            self._downloads = DownloadBridge(models_folder(self.settings), parent=self)
        win = ModelManagerWindow(self.settings, self._downloads, self)
        win.model_ready.connect(self._on_manager_model_ready)
        win.welcome_dismissed.connect(self._mark_welcome_done)
        win.token_entered.connect(
            lambda token: save_token_in_background(token, lambda msg: self.statusBar().showMessage(msg, 8000)))
        win.show()
        self._dialogs.append(win)
        return win

    def _mark_welcome_done(self) -> None:
        """The "New here?" banner is not shown again (dismissed, or the first chat happened)."""
        if not self.settings.welcome_done:
            self.settings.welcome_done = True
            save_settings(self.settings)

    def _on_manager_model_ready(self, path: str) -> None:
        self._refresh_models(path)
        self.load_model(path)

    # lifetime -----------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        window_state.save(self, self.splitter)
        window_state.remember_conversation(self.session.conversation_id)
        for win in self._dialogs:
            win.close()
        BackgroundOp.cancel_all_and_wait()
        if self._downloads is not None:
            self._downloads.shutdown()
        self.server_switch.shutdown()
        self.worker.stop()
        self._shutdown_requested.emit()
        # The engine thread frees the model (after the snapshot being written is on disk):
        # nothing here may destroy it or its worker while that runs.
        if not self.thread.stop_or_keep(self.ENGINE_STOP_WAIT_MS, self.worker):
            log.warning("the engine thread is still finishing; it ends on its own")
        # tokens already queued for the GUI belong in the saved reply
        QCoreApplication.sendPostedEvents(self.session)
        QCoreApplication.sendPostedEvents(self)
        if self.session.generating:
            self.session.abandon()
        self._count_timer.stop()
        self._count_timer.timeout.disconnect()
        if self._owns_store:
            self.store.close()
        super().closeEvent(event)

