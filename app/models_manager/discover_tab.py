"""Find models: the Llama 3 catalog, Hub search, a repo's files, gated sign-in."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QSplitter, QStackedWidget, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from app.models_manager.catalog_panel import CatalogPanel
from app.threads import run_in_background
from common.task import format_bytes, plural


class DiscoverTab(QWidget):
    download_requested = Signal(str, list, str)
    """Download these files of a repo: repo id, file names, revision."""
    token_entered = Signal(str)
    """The user typed a Hugging Face token to sign in with."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.catalog = CatalogPanel()
        self.catalog_button = QPushButton("Llama 3 catalog")
        self.hub_button = QPushButton("Search the Hub")
        pages = QButtonGroup(self)
        for b in (self.catalog_button, self.hub_button):
            b.setCheckable(True)
            b.setObjectName("SegmentButton")
            pages.addButton(b)
        self.catalog_button.setChecked(True)
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search the Hugging Face Hub (e.g. llama 3 gguf)")
        self.query.setAccessibleName("Search the Hub")
        self.search_button = QPushButton("Search")
        self.results = QListWidget()
        self.results.setAccessibleName("Search results")
        self.files = QTableWidget(0, 2)
        self.files.setHorizontalHeaderLabels(("File", "Size"))
        self.files.setAccessibleName("Repository files")
        self.files.horizontalHeader().setStretchLastSection(True)
        self.files.setColumnWidth(0, 380)
        self.files.verticalHeader().hide()
        self.repo_label = QLabel("Pick a repository to see its files.")
        self.repo_label.setObjectName("MutedLabel")
        self.gated_label = QLabel("")
        self.gated_label.setWordWrap(True)
        self.gated_label.setOpenExternalLinks(True)
        self.gated_label.setTextFormat(Qt.RichText)
        self.gated_label.hide()
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.Password)
        self.token.setPlaceholderText("Hugging Face token (hf_…)")
        self.token.setAccessibleName("Hugging Face token")
        self.sign_in = QPushButton("Sign in")
        self.token_row = QWidget()
        tr = QHBoxLayout(self.token_row)
        tr.setContentsMargins(0, 0, 0, 0)
        tr.addWidget(self.token, 1)
        tr.addWidget(self.sign_in)
        self.token_row.hide()
        self.download_button = QPushButton("Download selected")
        self.download_button.setObjectName("PrimaryButton")
        self.download_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setObjectName("MutedLabel")
        self.status.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.query, 1)
        top.addWidget(self.search_button)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.repo_label)
        rl.addWidget(self.gated_label)
        rl.addWidget(self.token_row)
        rl.addWidget(self.files, 1)
        rl.addWidget(self.download_button)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.results)
        split.addWidget(right)
        split.setSizes([300, 520])
        hub_page = QWidget()
        hub_layout = QVBoxLayout(hub_page)
        hub_layout.setContentsMargins(0, 0, 0, 0)
        hub_layout.addLayout(top)
        hub_layout.addWidget(split, 1)
        hub_layout.addWidget(self.status)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.catalog)
        self.pages.addWidget(hub_page)
        switch = QHBoxLayout()
        switch.setSpacing(0)
        switch.addWidget(self.catalog_button)
        switch.addWidget(self.hub_button)
        switch.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(switch)
        layout.addWidget(self.pages, 1)
        self.listing = None
        self.search_button.clicked.connect(self._on_search_clicked)
        self.query.returnPressed.connect(self._on_search_clicked)
        self.results.currentItemChanged.connect(self._on_results_current_changed)
        self.download_button.clicked.connect(self._on_download_clicked)
        self.sign_in.clicked.connect(self._on_sign_in_clicked)
        self.catalog_button.clicked.connect(lambda: self.pages.setCurrentIndex(0))
        self.hub_button.clicked.connect(lambda: self.pages.setCurrentIndex(1))
        self.catalog.repo_requested.connect(self.show_repo)
        self.catalog.download_requested.connect(self.download_requested)

    # searching ------------------------------------------------------------------
    def search(self, text: str) -> None:
        from models import hub

        self.status.setText("Searching…")
        (run_in_background(lambda _h: hub.search(text), "hub-search")
         .on_success(self._on_search_done).on_failure(self._on_hub_failed).start())

    def _on_search_clicked(self) -> None:
        self.search(self.query.text().strip())

    def _on_search_done(self, rows) -> None:
        self.results.clear()
        for r in rows:
            lock = "[gated] " if r.gated else ""
            item = QListWidgetItem(f"{lock}{r.repo_id}\n   {r.kind} · {r.downloads:,} downloads · {r.likes} likes")
            item.setData(Qt.UserRole, r.repo_id)
            self.results.addItem(item)
        self.status.setText(f"{len(rows)} repositories found." if rows else "Nothing found.")

    def _on_results_current_changed(self, item, _prev) -> None:
        if item is not None and item.data(Qt.UserRole):
            self.show_repo(item.data(Qt.UserRole))

    # one repo ---------------------------------------------------------------------
    def show_repo(self, repo_id: str) -> None:
        from models import hub

        self.show_hub_page()
        self.repo_label.setText(f"Loading {repo_id}…")
        (run_in_background(lambda _h: hub.list_repo(repo_id), "hub-list")
         .on_success(self._on_listing_done).on_failure(self._on_hub_failed).start())

    def _on_listing_done(self, listing) -> None:
        self.listing = listing
        self.repo_label.setText(f"<b>{listing.repo_id}</b> · {len(listing.files)} files · "
                                f"{format_bytes(listing.total_size)}")
        self.files.setRowCount(0)
        for f in listing.files:
            row = self.files.rowCount()
            self.files.insertRow(row)
            name = QTableWidgetItem(f.path)
            name.setFlags(Qt.ItemIsEnabled | Qt.ItemIsUserCheckable)
            name.setCheckState(Qt.Unchecked)
            self.files.setItem(row, 0, name)
            self.files.setItem(row, 1, QTableWidgetItem(format_bytes(f.size)))
        self.download_button.setEnabled(bool(listing.files))
        if listing.gated:
            self.show_gated(listing.repo_id, "This model is gated: accept its licence on Hugging Face, "
                                             "then sign in with a token.")
        else:
            self.gated_label.hide()
            self.token_row.hide()

    def show_hub_page(self) -> None:
        self.hub_button.setChecked(True)
        self.pages.setCurrentIndex(1)

    def show_gated(self, repo_id: str, message: str) -> None:
        from models import hub_env

        self.show_hub_page()
        url = f"{hub_env.endpoint()}/{repo_id}"
        self.gated_label.setText(f"{message} <a href=\"{url}\">Open the licence page</a>")
        self.gated_label.show()
        self.token_row.show()

    def checked_files(self) -> list[str]:
        return [self.files.item(r, 0).text() for r in range(self.files.rowCount())
                if self.files.item(r, 0).checkState() == Qt.Checked]

    def _on_download_clicked(self) -> None:
        names = self.checked_files()
        if self.listing is None or not names:
            self.status.setText("Tick the files to download first.")
            return
        self.download_requested.emit(self.listing.repo_id, names, self.listing.revision)
        self.status.setText(f"Queued {plural(len(names), 'file')}; see Downloads.")

    def _on_sign_in_clicked(self) -> None:
        if self.token.text().strip():
            self.token_entered.emit(self.token.text().strip())
            self.token.clear()

    def _on_hub_failed(self, exc) -> None:
        self.status.setText(str(exc))
        self.repo_label.setText("")
