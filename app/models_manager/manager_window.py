"""The model manager window: Discover, Downloads, Library and Convert tabs."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from app.models_manager.convert_tab import ConvertTab
from app.window_state import resize_within_screen
from app.models_manager.discover_tab import DiscoverTab
from app.models_manager.downloads_tab import DownloadsTab
from app.models_manager.library_tab import LibraryTab


class ModelManagerWindow(QWidget):
    model_ready = Signal(str)
    """A model file is ready to chat with (downloaded, converted or chosen in the library)."""
    token_entered = Signal(str)
    """The user typed a Hugging Face token."""
    welcome_dismissed = Signal()
    """The user closed the "New here?" banner for good."""

    def __init__(self, settings, bridge, parent=None):
        super().__init__(parent, Qt.Window)
        self.setWindowTitle("Models — LlamaDesk")
        self.setAccessibleName("Model manager")
        resize_within_screen(self, 960, 660)
        self.bridge = bridge
        self.confirm_box = None
        self.tabs = QTabWidget()
        self.discover = DiscoverTab()
        self.downloads = DownloadsTab(bridge)
        self.library = LibraryTab(settings)
        self.convert = ConvertTab(settings)
        self.tabs.addTab(self.discover, "Discover")
        self.tabs.addTab(self.downloads, "Downloads")
        self.tabs.addTab(self.library, "Library")
        self.tabs.addTab(self.convert, "Convert")
        self.buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.close_button = self.buttons.button(QDialogButtonBox.Close)
        self.close_button.setAccessibleName("Close the model manager")
        self.close_button.setIcon(QIcon())      # the style's icon is black on the dark theme
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.buttons)
        # the platform's close keys (Ctrl+W, Ctrl+F4 ...) and Escape, as in a dialog
        self.close_shortcut = QShortcut(self)
        self.close_shortcut.setKeys(QKeySequence.keyBindings(QKeySequence.Close) + [QKeySequence(Qt.Key_Escape)])
        self.close_shortcut.activated.connect(self.request_close)
        self.buttons.rejected.connect(self.request_close)
        self.discover.download_requested.connect(self._on_discover_download_requested)
        self.discover.token_entered.connect(self.token_entered)
        self.downloads.file_ready.connect(self._on_file_ready)
        self.downloads.licence_needed.connect(self._on_downloads_licence_needed)
        self.library.model_chosen.connect(self.model_ready)
        self.library.convert_requested.connect(self._on_library_convert_requested)
        self.convert.conversion_finished.connect(self._on_file_ready)
        self.convert.licence_needed.connect(self._on_downloads_licence_needed)
        self.discover.catalog.convert_requested.connect(self._on_catalog_convert_requested)
        self.discover.catalog.show_welcome(not settings.welcome_done)
        self.discover.catalog.welcome_dismissed.connect(self.welcome_dismissed)

    def _on_discover_download_requested(self, repo_id: str, names: list, revision: str) -> None:
        self.bridge.manager.enqueue(repo_id, list(names), revision or None)
        self.tabs.setCurrentWidget(self.downloads)

    def _on_catalog_convert_requested(self, repo_id: str, qtype: str) -> None:
        self.tabs.setCurrentWidget(self.convert)
        self.convert.start_from_hub(repo_id, qtype)

    def _on_library_convert_requested(self, folder: str) -> None:
        self.convert.source.setText(folder)
        self.convert.update_estimate()
        self.tabs.setCurrentWidget(self.convert)

    def _on_file_ready(self, path: str) -> None:
        self.library.refresh()

    def _on_downloads_licence_needed(self, repo_id: str, message: str) -> None:
        self.discover.show_gated(repo_id, message)
        self.tabs.setCurrentWidget(self.discover)

    def request_close(self) -> None:
        """Close (Close button, Escape, Ctrl+W); asks first when that would stop a conversion."""
        if self.convert.op is not None:
            self._ask_to_stop_conversion()
        else:
            self.close()

    def _ask_to_stop_conversion(self) -> None:
        if self.confirm_box is not None:
            return
        box = QMessageBox(QMessageBox.Question, "Stop the conversion?",
                          "A conversion is running. Closing this window stops it.",
                          QMessageBox.Yes | QMessageBox.Cancel, self)
        box.button(QMessageBox.Yes).setText("Stop and close")
        box.setDefaultButton(QMessageBox.Cancel)
        box.finished.connect(self._on_confirm_finished)
        self.confirm_box = box
        box.open()

    def _on_confirm_finished(self, result: int) -> None:
        self.confirm_box = None
        if result == QMessageBox.Yes:
            self.close()

    def closeEvent(self, event) -> None:
        if event.spontaneous() and self.convert.op is not None:
            event.ignore()            # the title bar's close button: ask, as the keys do
            self._ask_to_stop_conversion()
            return
        self.convert.cancel()
        if self.convert.op is not None:
            self.convert.op.wait()
        super().closeEvent(event)
