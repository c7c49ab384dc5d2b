"""A small table of remote OpenAI-compatible servers: name, address, API key, model."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from common.settings import RemoteServer

COLUMNS = ("Name", "Address (http://…/v1)", "API key", "Model")


class ServersEditor(QWidget):
    changed = Signal()
    """A row was added, removed or edited."""

    def __init__(self, servers: list[RemoteServer], parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Remote servers")
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(110)
        add = QPushButton("Add")
        remove = QPushButton("Remove")
        add.setAccessibleName("Add remote server")
        remove.setAccessibleName("Remove remote server")
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        for s in servers:
            self.add_row(s)
        add.clicked.connect(lambda: self.add_row(RemoteServer("Server", "http://127.0.0.1:8080/v1")))
        remove.clicked.connect(self._on_remove_clicked)
        self.table.itemChanged.connect(lambda _item: self.changed.emit())

    def add_row(self, s: RemoteServer) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, value in enumerate((s.name, s.base_url, s.api_key, s.model)):
            self.table.setItem(row, col, QTableWidgetItem(value))
        self.changed.emit()

    def servers(self) -> list[RemoteServer]:
        out = []
        for row in range(self.table.rowCount()):
            cells = [(self.table.item(row, c).text() if self.table.item(row, c) else "").strip()
                     for c in range(len(COLUMNS))]
            out.append(RemoteServer(*cells))
        return out

    def _on_remove_clicked(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)
            self.changed.emit()
