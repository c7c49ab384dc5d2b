"""The download queue: one row per file with a progress bar, speed, ETA and controls."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QProgressBar, QPushButton, QTableWidget, QVBoxLayout,
                               QWidget)

from common.task import format_bytes, format_eta

COLUMNS = ("File", "Progress", "Speed", "ETA", "State", "")


class DownloadsTab(QWidget):
    file_ready = Signal(str)
    """A downloaded GGUF is complete at this path."""
    licence_needed = Signal(str, str)
    """A gated repo refused the download: repo id and the message to show."""

    def __init__(self, bridge, parent=None):
        super().__init__(parent)
        self.bridge = bridge
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Downloads")
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        for col, width in enumerate((310, 170, 80, 56, 80)):
            self.table.setColumnWidth(col, width)
        self.summary = QLabel("No downloads yet.")
        self.summary.setObjectName("MutedLabel")
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        self._rows: dict[int, int] = {}
        self.bars: dict[int, QProgressBar] = {}
        self.buttons: dict[int, dict[str, QPushButton]] = {}
        self.states: dict[int, str] = {}
        bridge.download_event.connect(self._on_download_event)

    def _row_for(self, job) -> int:
        if job.job_id in self._rows:
            return self._rows[job.job_id]
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._rows[job.job_id] = row
        name = QLabel(f"{Path(job.filename).name}\n{job.repo_id}")
        name.setToolTip(f"{job.repo_id}/{job.filename}")
        self.table.setCellWidget(row, 0, name)
        bar = QProgressBar()
        bar.setAccessibleName(f"Download progress of {job.filename}")
        self.bars[job.job_id] = bar
        self.table.setCellWidget(row, 1, bar)
        box = QWidget()
        h = QHBoxLayout(box)
        h.setContentsMargins(2, 0, 2, 0)
        self.buttons[job.job_id] = {}
        for name, slot in (("Pause", self.bridge.manager.pause), ("Resume", self.bridge.manager.resume),
                           ("Cancel", self.bridge.manager.cancel)):
            b = QPushButton(name)
            b.setAccessibleName(f"{name} {job.filename}")
            b.clicked.connect(lambda _=False, s=slot, j=job.job_id: s(j))
            h.addWidget(b)
            self.buttons[job.job_id][name] = b
        self.table.setCellWidget(row, 5, box)
        self.table.setRowHeight(row, 44)
        return row

    def _on_download_event(self, event) -> None:
        job = event.job
        row = self._row_for(job)
        self.states[job.job_id] = job.state
        bar = self.bars[job.job_id]
        if job.total:
            bar.setRange(0, 1000)
            bar.setValue(int(1000 * job.done / job.total))
            bar.setFormat(f"{format_bytes(job.done)} / {format_bytes(job.total)}")
        self._set(row, 2, f"{format_bytes(job.speed)}/s" if job.speed and job.state == "running" else "")
        self._set(row, 3, format_eta(job.eta_s) if job.state == "running" else "")
        self._set(row, 4, job.error if job.state == "failed" and job.error else job.state)
        b = self.buttons[job.job_id]
        b["Pause"].setEnabled(job.state in ("queued", "running"))
        b["Resume"].setEnabled(job.state in ("paused", "failed"))
        b["Cancel"].setEnabled(job.state not in ("done", "cancelled"))
        if event.kind == "done" and job.path and str(job.path).endswith(".gguf"):
            self.file_ready.emit(str(job.path))
        if event.kind == "failed" and job.error and ("licence" in job.error or "sign in" in job.error.lower()
                                                     or "token" in job.error.lower()):
            self.licence_needed.emit(job.repo_id, job.error)
        t = self.bridge.manager.totals()
        self.summary.setText(f"{t.active} active · {format_bytes(t.done)} of {format_bytes(t.total)}"
                             + (f" · {format_bytes(t.speed)}/s · {format_eta(t.eta_s)} left" if t.speed else ""))

    def _set(self, row: int, col: int, text: str) -> None:
        label = self.table.cellWidget(row, col)
        if label is None:
            label = QLabel()
            label.setAlignment(Qt.AlignCenter)
            label.setWordWrap(True)
            self.table.setCellWidget(row, col, label)
        label.setText(text)
