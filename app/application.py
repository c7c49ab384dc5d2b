"""Starting the GUI."""
from __future__ import annotations

import sys


def run_app(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from models.bundled import bundled_model_path

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("LlamaDesk")
    app.setOrganizationName("LlamaDesk")
    model = bundled_model_path()
    window = MainWindow(str(model) if model else None)
    window.show()
    return app.exec()
