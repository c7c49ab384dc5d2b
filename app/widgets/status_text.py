"""A status line's text in the muted or the error colour (the stylesheets' MutedLabel / ErrorLabel)."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel


def show_status(label: QLabel, text: str, error: bool = False) -> None:
    """Set ``label``'s text, restyling it only when it switches between muted and error."""
    name = "ErrorLabel" if error else "MutedLabel"
    if label.objectName() != name:
        label.setObjectName(name)
        label.style().unpolish(label)
        label.style().polish(label)
    label.setText(text)
