"""Turn a Hugging Face Llama 3 folder into a 4-bit GGUF, with progress and cancel."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from app.model_choices import models_folder
from app.threads import run_in_background
from common.task import format_bytes, format_eta


class ConvertTab(QWidget):
    conversion_finished = Signal(str)
    """A converted, verified GGUF is ready at this path."""

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        from converters.quant_types import DEFAULT_QUANT_TYPE, QUANT_TYPES_INFO

        self.settings = settings
        self.source = QLineEdit()
        self.source.setPlaceholderText("A folder with config.json, tokenizer.json and *.safetensors")
        self.source.setAccessibleName("Checkpoint folder")
        browse = QPushButton("Browse…")
        self.quant = QComboBox()
        self.quant.setAccessibleName("Quantization type")
        for key, q in QUANT_TYPES_INFO.items():
            self.quant.addItem(f"{q.label} — {q.description}", key)
        self.quant.setCurrentIndex(self.quant.findData(DEFAULT_QUANT_TYPE))
        self.estimate = QLabel("")
        self.estimate.setObjectName("MutedLabel")
        self.convert_button = QPushButton("Convert")
        self.convert_button.setObjectName("PrimaryButton")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Conversion progress")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        src_row = QHBoxLayout()
        src_row.addWidget(self.source, 1)
        src_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Checkpoint", src_row)
        form.addRow("Quantization", self.quant)
        form.addRow("", self.estimate)
        buttons = QHBoxLayout()
        buttons.addWidget(self.convert_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.op = None
        browse.clicked.connect(self._on_browse_clicked)
        self.source.editingFinished.connect(self._update_estimate)
        self.quant.currentIndexChanged.connect(self._update_estimate)
        self.convert_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Hugging Face checkpoint folder")
        if folder:
            self.source.setText(folder)
            self._update_estimate()

    def _update_estimate(self, *_args) -> None:
        from converters.pipeline import estimate_output_bytes

        src, qtype = self.source.text().strip(), self.quant.currentData()
        if not src or not Path(src).is_dir():
            self.estimate.setText("")
            return
        (run_in_background(lambda _h: estimate_output_bytes(src, qtype), "estimate")
         .on_success(lambda n: self.estimate.setText(f"Output about {format_bytes(n)}"
                                                     + (" (recommended)" if qtype == "q4_k_m" else "")))
         .on_failure(lambda exc: self.estimate.setText(str(exc))).start())

    def output_path(self) -> Path:
        src = Path(self.source.text().strip())
        return models_folder(self.settings) / f"{src.name}-{self.quant.currentText().split(' ')[0]}.gguf"

    def start(self) -> None:
        from converters.pipeline import convert_checkpoint

        src, qtype, out = self.source.text().strip(), self.quant.currentData(), self.output_path()
        if not src:
            self.message.setText("Choose a checkpoint folder first.")
            return
        self.convert_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.message.setText(f"Converting to {out.name}…")
        self.op = (run_in_background(lambda h: convert_checkpoint(src, out, qtype, handle=h), "convert")
                   .on_progress(self._on_convert_progress).on_success(self._on_convert_done)
                   .on_failure(self._on_convert_failed).on_cancel(self._on_convert_cancelled).start())

    def cancel(self) -> None:
        if self.op is not None:
            self.op.cancel()

    def _on_convert_progress(self, report) -> None:
        if report.fraction is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(report.fraction * 1000))
        eta = f" · {format_eta(report.eta_s)} left" if report.eta_s is not None else ""
        self.message.setText(f"{report.message or 'Converting'}{eta}")

    def _finish(self, text: str) -> None:
        self.op = None
        self.convert_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1000)
        self.message.setText(text)

    def _on_convert_done(self, result) -> None:
        self.progress.setValue(1000)
        self._finish(f"Done: {result.path.name} ({format_bytes(result.output_bytes)}, "
                     f"{result.total_seconds:.1f} s).")
        self.conversion_finished.emit(str(result.path))

    def _on_convert_failed(self, exc) -> None:
        self.progress.setValue(0)
        self._finish(f"Conversion failed: {exc}")

    def _on_convert_cancelled(self) -> None:
        self.progress.setValue(0)
        self._finish("Conversion cancelled; nothing was left behind.")
