"""The Llama 3 catalog with "fits your machine" hints, and the two ways to get a model.

Each row is a catalog entry (models/catalog.json) with the file size and the memory
it needs at the chosen quant (computed by models.hardware from its shapes),
compared with this computer's RAM and, when llama.cpp can offload to a GPU, its
VRAM (``engine.machine.probe_machine``). From a row the user downloads a ready GGUF, or the original (gated)
checkpoint followed by a conversion here.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.threads import run_in_background
from engine.machine import probe_machine
from common.inference_options import DEFAULT_N_CTX
from common.task import format_bytes, format_parameters

SUGGESTED_ID = "llama-3.1-8b-instruct"
CONTEXT = DEFAULT_N_CTX      # the catalog's memory column: the context a model gets by default
COLUMNS = ("Model", "File", "Memory at 8K context", "On this computer")
FIT_COLORS = {"gpu": "#16a34a", "cpu": "#16a34a", "tight": "#d97706", "no": "#dc2626"}
FIT_MARKS = {"gpu": "✓", "cpu": "✓", "tight": "!", "no": "✗"}


def _label_for(text: str, buddy: QWidget) -> QLabel:
    label = QLabel(text)
    label.setBuddy(buddy)
    return label


def _short_context(n: int) -> str:
    return f"{n // 1024}K" if n >= 1024 else str(n)


class CatalogPanel(QWidget):
    download_requested = Signal(str, list, str)
    """Download these GGUF files of a repo: repo id, file names, revision."""
    convert_requested = Signal(str, str)
    """Download an original checkpoint and convert it: repo id and quant type key."""
    repo_requested = Signal(str)
    """Show this repo's files."""
    welcome_dismissed = Signal()
    """The user closed the "New here?" banner for good."""

    def __init__(self, parent=None):
        super().__init__(parent)
        from converters.quant_types import QUANT_TYPES_INFO
        from models import catalog

        self.entries = catalog.entries(CONTEXT)
        self.mem = None
        self.suggestion = QLabel("")
        self.suggestion.setWordWrap(True)
        self.suggestion.setObjectName("SuggestionLabel")
        self.suggestion.setTextFormat(Qt.RichText)
        self.suggestion.linkActivated.connect(self._on_suggestion_link_activated)
        self.machine = QLabel("Checking this computer's memory…")
        self.machine.setObjectName("MutedLabel")
        self.machine.setWordWrap(True)
        self.quant = QComboBox()
        self.quant.setAccessibleName("Catalog quantization")
        for key in self.entries[0].estimates:
            q = QUANT_TYPES_INFO[key]
            self.quant.addItem(q.label + (" (recommended)" if key == "q4_k_m" else ""), key)
        self.table = QTableWidget(len(self.entries), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Llama 3 catalog")
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeToContents)
        self.sources = QLabel("")
        self.sources.setWordWrap(True)
        self.sources.setTextFormat(Qt.RichText)
        self.gguf_repo = QComboBox()
        self.gguf_repo.setAccessibleName("GGUF repository")
        self.gguf_repo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.gguf_repo.setMinimumContentsLength(24)
        self.download_button = QPushButton("Download GGUF")
        self.download_button.setObjectName("PrimaryButton")
        self.convert_button = QPushButton("Download original and convert")
        self.files_button = QPushButton("Show files")
        self.files_button.setAccessibleName("Show the GGUF repository's files")

        top = QHBoxLayout()
        top.addWidget(self.machine, 1)
        top.addWidget(_label_for("Quantization", self.quant))
        top.addWidget(self.quant)
        source_row = QHBoxLayout()
        source_row.addWidget(_label_for("GGUF from", self.gguf_repo))
        source_row.addWidget(self.gguf_repo, 1)
        source_row.addWidget(self.files_button)
        actions = QHBoxLayout()
        actions.addWidget(self.download_button)
        actions.addWidget(self.convert_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.suggestion)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.sources)
        layout.addLayout(source_row)
        layout.addLayout(actions)
        self.status = QLabel("")
        self.status.setObjectName("MutedLabel")
        self.status.setWordWrap(True)
        actions.addWidget(self.status, 1)

        self._fill()
        self.quant.currentIndexChanged.connect(self._fill)
        self.table.currentCellChanged.connect(self._on_table_current_changed)
        self.download_button.clicked.connect(self._on_download_clicked)
        self.convert_button.clicked.connect(self._on_convert_clicked)
        self.files_button.clicked.connect(self._on_files_clicked)
        self.select(SUGGESTED_ID)
        (run_in_background(lambda _h: probe_machine(), "machine-memory")
         .on_success(lambda machine: self.set_machine(machine.memory(), machine.description))
         .on_failure(lambda exc: self.machine.setText(f"Could not read this computer's memory: {exc}"))
         .start())

    # what is shown ------------------------------------------------------------------
    def qtype(self) -> str:
        return self.quant.currentData()

    def set_machine(self, mem, description: str) -> None:
        """Compare every entry with this memory (models.hardware.MachineMemory)."""
        self.mem = mem
        self.machine.setText(f"This computer: {description}")
        self._fill()

    def hint(self, row: int) -> Optional[str]:
        """'gpu', 'cpu', 'tight' or 'no' for a row at the chosen quant; None before the check."""
        return self.entries[row].hint(self.qtype(), self.mem) if self.mem is not None else None

    def _fill(self, *_args) -> None:
        from models.hardware import FIT_HINTS

        q = self.qtype()
        for row, e in enumerate(self.entries):
            est = e.estimates[q]
            star = "★ Suggested · " if e.id == SUGGESTED_ID else ""
            name = QTableWidgetItem(f"{e.name}\n{star}{format_parameters(e.parameters)} parameters · "
                                    f"{_short_context(e.context)} context")
            name.setData(Qt.UserRole, e.id)
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, QTableWidgetItem(format_bytes(est.file_bytes)))
            self.table.setItem(row, 2, QTableWidgetItem(format_bytes(est.memory_bytes)))
            fit = self.hint(row)
            cell = QTableWidgetItem("…" if fit is None else f"{FIT_MARKS[fit]} {FIT_HINTS[fit]}")
            if fit is not None:
                cell.setForeground(QBrush(QColor(FIT_COLORS[fit])))
            self.table.setItem(row, 3, cell)
            self.table.setRowHeight(row, 44)
        self._show_suggestion()
        self._on_table_current_changed(self.table.currentRow())

    def _show_suggestion(self) -> None:
        from models.hardware import FIT_HINTS

        row = next(i for i, e in enumerate(self.entries) if e.id == SUGGESTED_ID)
        e, fit = self.entries[row], self.hint(row)
        est = e.estimates["q4_k_m"]
        fits = f", {FIT_HINTS[e.hint('q4_k_m', self.mem)]}" if fit is not None else ""
        self.suggestion.setText(
            "New here? The demo model (SmolLM2-135M) is ready to chat now. For real answers, "
            f"<b>{e.name}</b> at Q4_K_M ({format_bytes(est.file_bytes)}{fits}) is the suggested first download. "
            '<a href="dismiss">Don\'t show again</a>')

    def show_welcome(self, shown: bool) -> None:
        """Show or hide the "New here?" banner."""
        self.suggestion.setVisible(shown)

    def _on_suggestion_link_activated(self, link: str) -> None:
        if link == "dismiss":
            self.suggestion.hide()
            self.welcome_dismissed.emit()

    def select(self, entry_id: str) -> None:
        for row, e in enumerate(self.entries):
            if e.id == entry_id:
                self.table.setCurrentCell(row, 0)
                return

    def current_entry(self):
        row = self.table.currentRow()
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def _on_table_current_changed(self, row: int, *_rest) -> None:
        e = self.current_entry()
        self.gguf_repo.clear()
        for b in (self.download_button, self.convert_button, self.files_button):
            b.setEnabled(e is not None)
        if e is None:
            self.sources.setText("")
            return
        for g in e.gguf:
            self.gguf_repo.addItem(g.repo, g.repo)
        label = self.quant.currentText().split(" ")[0]
        self.sources.setText(
            f"<b>{e.name}</b> · ready GGUF files (not gated): {', '.join(g.repo for g in e.gguf)}<br>"
            f"Original weights: {e.original} (gated: accept Meta's licence and sign in), "
            f"converted here to {label}.")

    # actions ---------------------------------------------------------------------------
    def _on_download_clicked(self) -> None:
        """List the repo (off the GUI thread) and download its file(s) of the chosen quant."""
        from models import hub

        repo, label = self.gguf_repo.currentData(), self.quant.currentText().split(" ")[0]
        if not repo:
            return
        self.download_button.setEnabled(False)
        self.status.setText(f"Looking for the {label} file in {repo}…")
        (run_in_background(lambda _h: hub.list_repo(repo), "catalog-list")
         .on_success(lambda listing: self._on_listing_done(listing, label))
         .on_failure(self._on_listing_failed).start())

    def _on_listing_done(self, listing, label: str) -> None:
        self.download_button.setEnabled(True)
        found = [s for s in listing.gguf_sets if (s.quant or "").upper() == label and s.complete]
        if not found:
            self.status.setText(f"{listing.repo_id} has no complete {label} file; pick one from its files.")
            self.repo_requested.emit(listing.repo_id)
            return
        chosen = found[0]
        self.status.setText(f"Queued {chosen.name} ({format_bytes(chosen.size)}).")
        self.download_requested.emit(listing.repo_id, list(chosen.files), listing.revision)

    def _on_listing_failed(self, exc) -> None:
        self.download_button.setEnabled(True)
        self.status.setText(str(exc))

    def _on_convert_clicked(self) -> None:
        e = self.current_entry()
        if e is not None:
            self.convert_requested.emit(e.original, self.qtype())

    def _on_files_clicked(self) -> None:
        if self.gguf_repo.currentData():
            self.repo_requested.emit(self.gguf_repo.currentData())
