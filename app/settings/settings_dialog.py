"""Settings form. Values are checked as they are typed; Save stays off while any is bad."""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QPushButton, QRadioButton, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from app.settings.servers_editor import ServersEditor
from common.settings import SAMPLING_PRESETS, THEMES, Settings, validate_field


class SettingsDialog(QDialog):
    settings_saved = Signal(object)
    """The user saved; the argument is the new Settings."""
    token_saved = Signal(str)
    """The user entered a Hugging Face token (empty: sign out)."""
    cache_clear_requested = Signal()
    """The user asked to delete every saved conversation cache."""

    def __init__(self, settings: Settings, token_hint: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self._base = settings
        self.tabs = QTabWidget()
        self.tabs.addTab(self._chat_tab(settings), "Chat")
        self.tabs.addTab(self._model_tab(settings), "Model")
        self.tabs.addTab(self._look_tab(settings), "Appearance")
        self.tabs.addTab(self._accounts_tab(settings, token_hint), "Accounts && servers")
        self.error_label = QLabel("")
        self.error_label.setObjectName("ErrorLabel")
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.Save)
        self.buttons.accepted.connect(self._on_save_clicked)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.resize(560, 520)
        # Escape closes a dialog already; the platform's close keys (Ctrl+W ...) do too
        self.close_shortcut = QShortcut(self)
        self.close_shortcut.setKeys(QKeySequence.keyBindings(QKeySequence.Close))
        self.close_shortcut.activated.connect(self.reject)
        self._check()

    # tabs -------------------------------------------------------------------
    def _chat_tab(self, s: Settings) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.system_prompt = QPlainTextEdit(s.system_prompt)
        self.system_prompt.setAccessibleName("Default system prompt")
        self.system_prompt.setFixedHeight(80)
        self.preset = QComboBox()
        self.preset.setAccessibleName("Sampling preset")
        self.preset.addItems(list(SAMPLING_PRESETS) + ["Custom"])
        self.preset.setCurrentText(s.preset_name())
        self.temperature = self._double(s.params.temperature, 0, 2, 0.05, "Temperature")
        self.top_p = self._double(s.params.top_p, 0, 1, 0.01, "Top-p")
        self.top_k = self._int(s.params.top_k, 0, 1000, "Top-k")
        self.min_p = self._double(s.params.min_p, 0, 1, 0.01, "Min-p")
        self.repeat_penalty = self._double(s.params.repeat_penalty, 0.5, 2, 0.01, "Repeat penalty")
        self.max_tokens = self._int(s.params.max_tokens, 1, 131072, "Max reply tokens")
        self.seed = QLineEdit("" if s.params.seed is None else str(s.params.seed))
        self.seed.setPlaceholderText("random")
        self.seed.setAccessibleName("Seed")
        form.addRow("Default system prompt", self.system_prompt)
        form.addRow("Preset", self.preset)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Min-p", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Max reply tokens", self.max_tokens)
        form.addRow("Seed", self.seed)
        self.preset.currentTextChanged.connect(self._on_preset_changed)
        for box in (self.temperature, self.top_p, self.top_k, self.min_p, self.repeat_penalty):
            box.valueChanged.connect(self._on_sampling_changed)
        self.seed.textChanged.connect(self._check)
        return w

    def _model_tab(self, s: Settings) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.n_ctx = self._int(s.load.n_ctx, 256, 1048576, "Context size")
        self.n_ctx.setSingleStep(1024)
        self.gpu_auto = QRadioButton("Automatic (as many layers as fit)")
        self.gpu_manual = QRadioButton("Layers on GPU:")
        group = QButtonGroup(w)
        group.addButton(self.gpu_auto)
        group.addButton(self.gpu_manual)
        self.gpu_layers = self._int(0 if s.load.gpu_layers == "auto" else int(s.load.gpu_layers), 0, 10000, "GPU layers")
        (self.gpu_auto if s.load.gpu_layers == "auto" else self.gpu_manual).setChecked(True)
        self.gpu_layers.setEnabled(s.load.gpu_layers != "auto")
        self.gpu_manual.toggled.connect(self.gpu_layers.setEnabled)
        gpu_row = QHBoxLayout()
        gpu_row.addWidget(self.gpu_manual)
        gpu_row.addWidget(self.gpu_layers)
        self.threads = self._int(s.load.threads, 0, 1024, "Threads")
        self.threads.setSpecialValueText("automatic (physical cores)")
        self.models_dir = QLineEdit(s.models_dir)
        self.models_dir.setPlaceholderText("default models folder")
        self.models_dir.setAccessibleName("Models folder")
        self.models_dir.textChanged.connect(self._check)
        form.addRow("Context size (tokens)", self.n_ctx)
        form.addRow("GPU", self.gpu_auto)
        form.addRow("", _wrap(gpu_row))
        form.addRow("Threads", self.threads)
        form.addRow("Models folder", self.models_dir)
        self.serve_on = QCheckBox("Serve the loaded model to other programs on this computer")
        self.serve_on.setChecked(s.serve_on)
        self.serve_port = self._int(s.serve_port, 0, 65535, "Local API port")
        self.serve_port.setGroupSeparatorShown(False)
        self.serve_port.setSpecialValueText("any free port")
        serve_row = QHBoxLayout()
        serve_row.addWidget(self.serve_on)
        serve_row.addWidget(QLabel("port"))
        serve_row.addWidget(self.serve_port)
        form.addRow("Local API", _wrap(serve_row))
        form.addRow("Conversation cache", self._cache_row(s))
        return w

    def _cache_row(self, s: Settings) -> QWidget:
        """Disk kept for each conversation's saved KV cache, what it holds now, and Clear."""
        from engine.snapshots import disk_usage

        self.kv_cache_mb = self._int(s.kv_cache_mb, 0, 10_000_000, "Conversation cache size in MB")
        self.kv_cache_mb.setSuffix(" MB")
        self.kv_cache_mb.setSingleStep(512)
        self.kv_cache_mb.setSpecialValueText("off")
        self.kv_cache_mb.setToolTip("Each conversation's model memory is kept on disk, so going back to it, "
                                    "even after a restart, needs no re-reading. The least recently used go "
                                    "first when this is full.")
        self.cache_used = QLabel(f"{_size(disk_usage())} used")
        self.cache_used.setObjectName("MutedLabel")
        self.cache_clear = QPushButton("Clear")
        self.cache_clear.setAccessibleName("Clear the conversation cache")
        self.cache_clear.clicked.connect(self._on_cache_clear_clicked)
        row = QHBoxLayout()
        row.addWidget(self.kv_cache_mb)
        row.addWidget(self.cache_used, 1)
        row.addWidget(self.cache_clear)
        return _wrap(row)

    def _on_cache_clear_clicked(self) -> None:
        self.cache_clear_requested.emit()
        self.cache_used.setText("cleared")

    def _look_tab(self, s: Settings) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.theme = QComboBox()
        self.theme.setAccessibleName("Theme")
        for t in THEMES:
            self.theme.addItem({"system": "Follow the system", "light": "Light", "dark": "Dark"}[t], t)
        self.theme.setCurrentIndex(THEMES.index(s.theme))
        form.addRow("Theme", self.theme)
        return w

    def _accounts_tab(self, s: Settings, token_hint: str) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.hf_token = QLineEdit()
        self.hf_token.setEchoMode(QLineEdit.Password)
        self.hf_token.setAccessibleName("Hugging Face token")
        self.hf_token.setPlaceholderText(token_hint or "hf_… (needed for Meta's gated Llama 3 repos)")
        self.servers = ServersEditor(s.remote_servers)
        self.servers.changed.connect(self._check)
        form.addRow("Hugging Face token", self.hf_token)
        form.addRow("Remote servers", self.servers)
        return w

    def _double(self, value, lo, hi, step, name) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setValue(value)
        box.setAccessibleName(name)
        return box

    def _int(self, value, lo, hi, name) -> QSpinBox:
        box = QSpinBox()
        box.setRange(lo, hi)
        box.setValue(int(value))
        box.setAccessibleName(name)
        box.setGroupSeparatorShown(True)
        return box

    # reading the form -------------------------------------------------------
    def current(self) -> Settings:
        """The settings the form shows (may be invalid: see ``problems``)."""
        seed_text = self.seed.text().strip()
        seed = int(seed_text) if seed_text.isdigit() else (None if not seed_text else seed_text)
        params = replace(
            self._base.params, temperature=round(self.temperature.value(), 4),
            top_p=round(self.top_p.value(), 4), top_k=self.top_k.value(), min_p=round(self.min_p.value(), 4),
            repeat_penalty=round(self.repeat_penalty.value(), 4), max_tokens=self.max_tokens.value(), seed=seed)
        load = replace(self._base.load, n_ctx=self.n_ctx.value(),
                       gpu_layers="auto" if self.gpu_auto.isChecked() else self.gpu_layers.value(),
                       threads=self.threads.value())
        return replace(
            self._base, system_prompt=self.system_prompt.toPlainText(), params=params, load=load,
            models_dir=self.models_dir.text().strip(),
            serve_on=self.serve_on.isChecked(), serve_port=self.serve_port.value(),
            kv_cache_mb=self.kv_cache_mb.value(),
            theme=self.theme.currentData(), remote_servers=self.servers.servers())

    def problems(self) -> dict[str, str]:
        s = self.current()
        found = s.errors()
        if isinstance(s.params.seed, str):
            found["seed"] = validate_field("seed", "x")
        return found

    def _check(self, *_args) -> None:
        bad = self.problems()
        self.error_label.setText("\n".join(bad.values()))
        self.save_button.setEnabled(not bad)
        self.seed.setStyleSheet("border: 1px solid #b42318;" if "seed" in bad else "")
        self.models_dir.setStyleSheet("border: 1px solid #b42318;" if "models_dir" in bad else "")

    def _on_preset_changed(self, name: str) -> None:
        if name in SAMPLING_PRESETS:
            values = SAMPLING_PRESETS[name]
            for key, box in (("temperature", self.temperature), ("top_p", self.top_p), ("top_k", self.top_k),
                             ("min_p", self.min_p), ("repeat_penalty", self.repeat_penalty)):
                box.blockSignals(True)
                box.setValue(values[key])
                box.blockSignals(False)

    def _on_sampling_changed(self, _value) -> None:
        self.preset.blockSignals(True)
        self.preset.setCurrentText(self.current().preset_name())
        self.preset.blockSignals(False)

    def _on_save_clicked(self) -> None:
        if self.problems():
            return
        if self.hf_token.text().strip():
            self.token_saved.emit(self.hf_token.text().strip())
        self.settings_saved.emit(self.current())
        self.accept()


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _wrap(layout) -> QWidget:
    w = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    w.setLayout(layout)
    return w
