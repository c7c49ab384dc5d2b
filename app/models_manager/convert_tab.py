"""Turn a Hugging Face Llama 3 folder (or a Hub repo) into a 4-bit GGUF, with progress and cancel."""
from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMessageBox,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from app.models_manager.quality_views import conversions_html, measure_option_text
from app.threads import run_in_background
from app.widgets.status_text import show_status
from common.task import format_bytes, format_eta
from models.choices import models_folder

CHECK_NAMES = {"loads": "Loads in llama.cpp", "evaluates": "Evaluates a prompt", "tensors": "Tensor layout",
               "end_of_generation": "End of turn stops generation", "chat_template": "Chat template renders",
               "tokenizer_parity": "Tokenizer matches the original"}


class ConvertTab(QWidget):
    conversion_finished = Signal(str)
    """A converted, verified GGUF is ready at this path."""
    licence_needed = Signal(str, str)
    """The original repo refused the download: repo id and the message to show."""

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
        self._quant_texts = {}
        for key, q in QUANT_TYPES_INFO.items():
            self._quant_texts[key] = f"{q.label} — {q.description}" + (
                "" if key != DEFAULT_QUANT_TYPE or "recommended" in q.description else " (recommended)")
            self.quant.addItem(self._quant_texts[key], key)
        self.quant.setCurrentIndex(self.quant.findData(DEFAULT_QUANT_TYPE))
        self.estimate = QLabel("")
        self.estimate.setObjectName("MutedLabel")
        self.estimate.setWordWrap(True)   # it also says why a folder cannot be converted
        self.measure = QCheckBox(measure_option_text(None))
        self.measure.setChecked(True)
        self.measure.setAccessibleName("Measure quality after quantizing")
        self.measure.setToolTip("Compares the quantized file with the F16/BF16 original on a calibration text "
                                "(how often both pick the same next token, KL divergence, perplexity) "
                                "and keeps the result with the file.")
        self.made_before = QLabel("")
        self.made_before.setTextFormat(Qt.RichText)
        self.made_before.setAccessibleName("Files already made from this checkpoint")
        self.quality = QLabel("")
        self.quality.setWordWrap(True)
        self.quality.setAccessibleName("Measured quality")
        self.convert_button = QPushButton("Convert")
        self.convert_button.setObjectName("PrimaryButton")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Conversion progress")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.verification = QLabel("")
        self.verification.setWordWrap(True)
        self.verification.setTextFormat(Qt.RichText)
        self.verification.setAccessibleName("Verification result")
        self.output = QLabel("")
        self.output.setWordWrap(True)
        self.output.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.output.setAccessibleName("Converted file")
        self.show_folder_button = QPushButton("Show in folder")
        self.show_folder_button.setAccessibleName("Show the converted file's folder")
        self.output_row = QWidget()
        out_row = QHBoxLayout(self.output_row)
        out_row.setContentsMargins(0, 0, 0, 0)
        out_row.addWidget(self.output, 1)
        out_row.addWidget(self.show_folder_button)
        self.output_row.hide()
        self.confirm_box = None
        self.sizes: dict[str, int] = {}
        self._measured: dict = {}          # quant key -> " · made: 92% same next token · KLD 0.031"
        src_row = QHBoxLayout()
        src_row.addWidget(self.source, 1)
        src_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Checkpoint", src_row)
        browse.setAccessibleName("Browse for a checkpoint folder")
        form.addRow("Quantization", self.quant)
        form.addRow("", self.estimate)
        form.addRow("", self.measure)
        form.addRow("", self.made_before)
        buttons = QHBoxLayout()
        buttons.addWidget(self.convert_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.output_row)
        layout.addWidget(self.verification)
        layout.addWidget(self.quality)
        layout.addStretch(1)
        self.op = None
        self._repo = ""
        browse.clicked.connect(self._on_browse_clicked)
        self.source.editingFinished.connect(self.update_estimate)
        self.quant.currentIndexChanged.connect(self.update_estimate)
        self.convert_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.show_folder_button.clicked.connect(self._on_show_folder_clicked)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Hugging Face checkpoint folder")
        if folder:
            self.source.setText(folder)
            self.update_estimate()

    def update_estimate(self, *_args) -> None:
        """Estimate the output size of every quant type (off the GUI thread) and show it in the chooser."""
        src = self.source.text().strip()
        if not src or not Path(src).is_dir():
            self._show_sizes(src, {})
            self.made_before.setText("")
            self._listed_source, self._measured = None, {}
            return
        if src != getattr(self, "_listed_source", None):
            self._listed_source, self._measured = src, {}
            self.refresh_made_before()
        if self.sizes and getattr(self, "_sized_source", None) == src:
            self._show_sizes(src, self.sizes)
            return
        keys = [self.quant.itemData(i) for i in range(self.quant.count())]
        self._show_estimate("Estimating output sizes…")
        (run_in_background(lambda _h: _estimate_all(src, keys), "estimate")
         .on_success(lambda sizes: self._show_sizes(src, sizes))
         .on_failure(lambda exc: self._show_estimate(str(exc), error=True)).start())

    def _show_estimate(self, text: str, error: bool = False) -> None:
        show_status(self.estimate, text, error)

    def _show_sizes(self, src: str, sizes: dict) -> None:
        if src != self.source.text().strip():
            return  # the folder changed while this was measured
        self._sized_source, self.sizes = src, dict(sizes)
        self._label_quants(sizes)
        q = self.quant.currentData()
        self._show_measure_option(q, sizes)
        self._show_estimate(f"Output about {format_bytes(sizes[q])}"
                            + (" (recommended)" if q == "q4_k_m" else "") if q in sizes else "")

    def _show_measure_option(self, qtype: str, sizes: dict) -> None:
        """The measurement applies to quantized outputs; its cost, when the sizes are known."""
        from converters.quant_types import is_quantized
        from engine.quality import estimate_seconds

        seconds = estimate_seconds(sizes["f16"] // 2) if "f16" in sizes else None   # F16: 2 bytes a weight
        self.measure.setText(measure_option_text(seconds))
        self.measure.setEnabled(is_quantized(qtype))

    def refresh_made_before(self) -> None:
        """List, side by side, the files the library already has from this checkpoint (worker thread)."""
        src = self.source.text().strip()
        repo = None if src else (self._repo or None)

        def find(_h):
            from models import library
            from models.quant_quality import conversions_of

            return conversions_of(library.scan(), source_path=src or None, repo_id=repo)
        (run_in_background(find, "made-before")
         .on_success(lambda found: self._show_made_before(src, found)).start())

    def _show_made_before(self, src: str, found: list) -> None:
        """The side-by-side table, and each measured quant's figure in the chooser itself."""
        from models.quant_quality import short

        if src != self.source.text().strip():
            return  # the folder changed meanwhile
        self.made_before.setText(conversions_html(found))
        self._measured = {(e.provenance.get("quant") or "").lower(): f" · made: {short(e.quality)}"
                          for e in found if e.quality}
        self._label_quants(self.sizes if getattr(self, "_sized_source", None) == src else {})

    def _label_quants(self, sizes: dict) -> None:
        """Each chooser entry: the type, its estimated size and, when made before, its measured figure."""
        for i in range(self.quant.count()):
            key = self.quant.itemData(i)
            size = f" · about {format_bytes(sizes[key])}" if key in sizes else ""
            self.quant.setItemText(i, self._quant_texts[key] + size + self._measured.get(key, ""))

    def _measurer(self):
        if not self.measure.isChecked() or not self.measure.isEnabled():
            return None
        from engine.quality import measure_quality

        return measure_quality

    def output_path(self) -> Path:
        from models.convert_chain import folder_converted_path

        return folder_converted_path(self.source.text().strip(), self.quant.currentData(),
                                     models_folder(self.settings))

    def start(self) -> None:
        """Convert the chosen folder; asks first when that would replace a file."""
        src, out = self.source.text().strip(), self.output_path()
        if not src:
            self.message.setText("Choose a checkpoint folder first.")
            return
        if self.op is not None:
            self.message.setText("A conversion is already running.")
            return
        self._ask_to_replace(out, self._start_local)

    def _ask_to_replace(self, out: Path, go) -> None:
        """Run ``go()`` now, or once the user agrees to replace an existing ``out``."""
        if not out.exists():
            go()
            return
        box = QMessageBox(QMessageBox.Warning, "Replace model", f"Replace {out.name}?",
                          QMessageBox.Yes | QMessageBox.Cancel, self)
        box.setInformativeText(f"{out} already exists. Converting again replaces it once the new "
                               f"file is verified; until then the old one stays.")
        box.button(QMessageBox.Yes).setText("Replace")
        box.setDefaultButton(QMessageBox.Cancel)
        box.finished.connect(lambda result: self._on_replace_finished(result, out, go))
        self.confirm_box = box
        box.open()

    def _on_replace_finished(self, result: int, out: Path, go) -> None:
        self.confirm_box = None
        if result == QMessageBox.Yes:
            go()
        else:
            self.message.setText(f"Not converted: {out.name} is kept as it is.")

    def _start_local(self) -> None:
        from models.convert_chain import convert_and_register

        src, qtype, out = self.source.text().strip(), self.quant.currentData(), self.output_path()
        measure = self._measurer()

        def job(h):
            return convert_and_register(src, out, qtype, handle=h, measure=measure)

        self._run(job, f"Converting to {out.name}…")

    def start_from_hub(self, repo_id: str, qtype: str) -> None:
        """Download an original checkpoint (into the HF cache), then convert it like a local folder;
        asks first when that would replace a file."""
        from models.convert_chain import converted_path

        if self.op is not None:
            self.message.setText("A conversion is already running.")
            return
        self.quant.setCurrentIndex(self.quant.findData(qtype))
        out = converted_path(repo_id, qtype, models_folder(self.settings))
        self._ask_to_replace(out, lambda: self._start_hub(repo_id, qtype))

    def _start_hub(self, repo_id: str, qtype: str) -> None:
        from models.convert_chain import download_and_convert

        folder = models_folder(self.settings)
        self._repo = repo_id
        measure = self._measurer()

        def job(h):
            def handle_for(remote):       # each file's progress shows on the job's bar
                return h.linked(lambda p: h.progress(p.done, p.total, unit="B",
                                                     message=f"Downloading {remote.filename}"))
            return download_and_convert(repo_id, qtype, models_dir=folder, handle=h, handle_for=handle_for,
                                        measure=measure)

        self._run(job, f"Downloading {repo_id}, then converting it to {qtype.upper()}…")

    def _run(self, job, text: str) -> None:
        self.convert_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.message.setText(text)
        self.verification.setText("")
        self.quality.setText("")
        self.output_row.hide()
        self.op = (run_in_background(job, "convert")
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
        self.verification.setText(verification_html(result.verification))
        if getattr(result, "quality", None) is not None:
            from models.quant_quality import describe

            q = result.quality
            self.quality.setText(f"Quality: {describe(q.to_dict(), q.other_quant)} "
                                 f"(measured in {q.seconds:.0f} s).")
        elif getattr(result, "measure_error", ""):
            self.quality.setText(f"Quality not measured: {result.measure_error} "
                                 f"The file is verified and kept; measure it later from the library.")
        self.refresh_made_before()
        self.output.setText(f"Saved as {result.path}")
        self._output_path = Path(result.path)
        self.output_row.show()
        self.conversion_finished.emit(str(result.path))

    def _on_show_folder_clicked(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._output_path.parent)))

    def _on_convert_failed(self, exc) -> None:
        from models.hub_errors import HubAccessError

        self.progress.setValue(0)
        if isinstance(exc, HubAccessError):
            self._finish(f"Could not download {exc.repo_id or self._repo}: {exc}")
            if exc.kind in ("sign_in", "licence", "bad_token"):
                self.licence_needed.emit(exc.repo_id or self._repo, str(exc))
            return
        self._finish(f"Conversion failed: {exc}")

    def _on_convert_cancelled(self) -> None:
        self.progress.setValue(0)
        self._finish("Conversion cancelled; nothing was left behind.")


def _estimate_all(src: str, keys: list) -> dict:
    from converters.pipeline import estimate_output_bytes

    return {k: estimate_output_bytes(src, k) for k in keys}


def verification_html(report) -> str:
    """The checks a finished conversion passed, one line each."""
    rows = []
    for c in report.checks:
        mark, color = ("–", "#6b7280") if c.skipped else ("✓", "#16a34a") if c.ok else ("✗", "#dc2626")
        rows.append(f'<span style="color:{color}">{mark}</span> <b>{escape(CHECK_NAMES.get(c.name, c.name))}</b>'
                    f": {escape(c.detail)}")
    passed = sum(1 for c in report.checks if c.ok and not c.skipped)
    head = (f"<b>Verified</b>: {passed} of {len(report.checks)} checks passed" if report.ok
            else "<b>Verification failed</b>")
    return head + "<br>" + "<br>".join(rows)

