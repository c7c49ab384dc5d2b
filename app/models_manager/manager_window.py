"""The model manager window: Discover, Downloads, Library and Convert tabs."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from app.models_manager.convert_tab import ConvertTab
from app.models_manager.discover_tab import DiscoverTab
from app.models_manager.downloads_tab import DownloadsTab
from app.models_manager.library_tab import LibraryTab


class ModelManagerWindow(QWidget):
    model_ready = Signal(str)
    """A model file is ready to chat with (downloaded, converted or chosen in the library)."""
    token_entered = Signal(str)
    """The user typed a Hugging Face token."""

    def __init__(self, settings, bridge, parent=None):
        super().__init__(parent, Qt.Window)
        self.setWindowTitle("Models — LlamaDesk")
        self.setAccessibleName("Model manager")
        self.resize(960, 660)
        self.bridge = bridge
        self.tabs = QTabWidget()
        self.discover = DiscoverTab()
        self.downloads = DownloadsTab(bridge)
        self.library = LibraryTab(settings)
        self.convert = ConvertTab(settings)
        self.tabs.addTab(self.discover, "Discover")
        self.tabs.addTab(self.downloads, "Downloads")
        self.tabs.addTab(self.library, "Library")
        self.tabs.addTab(self.convert, "Convert")
        QVBoxLayout(self).addWidget(self.tabs)
        self.discover.download_requested.connect(self._on_discover_download_requested)
        self.discover.token_entered.connect(self.token_entered)
        self.downloads.file_ready.connect(self._on_file_ready)
        self.downloads.licence_needed.connect(self._on_downloads_licence_needed)
        self.library.model_chosen.connect(self.model_ready)
        self.library.convert_requested.connect(self._on_library_convert_requested)
        self.convert.conversion_finished.connect(self._on_file_ready)
        self.convert.licence_needed.connect(self._on_downloads_licence_needed)
        self.discover.catalog.convert_requested.connect(self._on_catalog_convert_requested)

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

    def closeEvent(self, event) -> None:
        self.convert.cancel()
        if self.convert.op is not None:
            self.convert.op.wait()
        super().closeEvent(event)
