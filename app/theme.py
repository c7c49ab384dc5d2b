"""Light and dark themes: Fusion style, a palette, a stylesheet from assets/, themed icons.

"system" follows the desktop's colour scheme (QStyleHints.colorScheme) and keeps
following it while the app runs.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QPointF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QProxyStyle, QStyle, QStyleFactory

ASSETS = Path(__file__).resolve().parents[1] / "assets"
ICON_COLORS = {"light": "#374151", "dark": "#d1d5db"}
_styled_app = None      # the application IndicatorStyle was installed on


def resolve(theme: str) -> str:
    """'light' or 'dark' for a setting of system/light/dark."""
    if theme in ("light", "dark"):
        return theme
    hints = QGuiApplication.styleHints()
    return "dark" if hints.colorScheme() == Qt.ColorScheme.Dark else "light"


def apply(app, theme: str) -> str:
    """Style the whole application; returns the resolved 'light' or 'dark'."""
    global _styled_app
    resolved = resolve(theme)
    if _styled_app is not app:      # once: replacing the style on every theme change churns widgets
        app.setStyle(IndicatorStyle())
        _styled_app = app
    app.setPalette(_palette(resolved))
    app.setStyleSheet((ASSETS / f"{resolved}.qss").read_text(encoding="utf-8"))
    return resolved


class IndicatorStyle(QProxyStyle):
    """Fusion, with radio buttons and check boxes that show on a dark palette.

    Fusion outlines them in a darker shade of the window colour, which on a dark
    window is all but invisible; here the outline is a mid-grey taken from the text
    colour whenever the window is dark. The check mark and dot stay Fusion's own.
    """

    def __init__(self):
        super().__init__(QStyleFactory.create("Fusion"))

    def drawPrimitive(self, element, option, painter, widget=None) -> None:  # noqa: N802 - Qt's name
        super().drawPrimitive(element, option, painter, widget)
        if element not in (QStyle.PE_IndicatorRadioButton, QStyle.PE_IndicatorCheckBox):
            return
        if option.palette.color(QPalette.Window).lightness() >= 128:
            return
        outline = QColor(option.palette.color(QPalette.Text))
        outline.setAlpha(150 if option.state & QStyle.State_Enabled else 70)
        painter.save()
        painter.setRenderHint(QPainter.Antialiasing, True)
        painter.setPen(QPen(outline, 1))
        painter.setBrush(Qt.NoBrush)
        r = option.rect
        if element == QStyle.PE_IndicatorRadioButton:
            radius = (r.width() + (r.width() + 1) % 2) / 2.0 - 1
            painter.drawEllipse(QPointF(r.center()) + QPointF(1, 1) - QPointF(0.5, 0.5), radius, radius)
        else:
            painter.drawRoundedRect(r.adjusted(1, 1, -1, -1).toRectF().adjusted(0.5, 0.5, -0.5, -0.5), 2, 2)
        painter.restore()


def icon(name: str, theme: str = "light") -> QIcon:
    svg = (ASSETS / "icons" / f"{name}.svg").read_text(encoding="utf-8")
    svg = svg.replace("currentColor", ICON_COLORS.get(theme, ICON_COLORS["light"]))
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    icon = QIcon()
    # one pixmap per size a button asks for at 1x and 2x, so icons stay sharp on high-DPI screens
    for side in (16, 24, 32, 48, 64, 128):
        pixmap = QPixmap(side, side)
        pixmap.fill(Qt.transparent)
        painter = QPainter(pixmap)
        renderer.render(painter)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def _palette(theme: str) -> QPalette:
    p = QPalette()
    if theme == "dark":
        colors = {QPalette.Window: "#1b1c20", QPalette.WindowText: "#e5e7eb", QPalette.Base: "#202228",
                  QPalette.AlternateBase: "#24262c", QPalette.Text: "#e5e7eb", QPalette.Button: "#24262c",
                  QPalette.ButtonText: "#e5e7eb", QPalette.Highlight: "#3b6fe0",
                  QPalette.HighlightedText: "#ffffff", QPalette.ToolTipBase: "#24262c",
                  QPalette.ToolTipText: "#e5e7eb", QPalette.Link: "#7aa2f7", QPalette.PlaceholderText: "#7b818c"}
    else:
        colors = {QPalette.Window: "#ffffff", QPalette.WindowText: "#111827", QPalette.Base: "#ffffff",
                  QPalette.AlternateBase: "#f6f7f9", QPalette.Text: "#111827", QPalette.Button: "#ffffff",
                  QPalette.ButtonText: "#111827", QPalette.Highlight: "#2563eb",
                  QPalette.HighlightedText: "#ffffff", QPalette.ToolTipBase: "#ffffff",
                  QPalette.ToolTipText: "#111827", QPalette.Link: "#2563eb", QPalette.PlaceholderText: "#9ca3af"}
    for role, value in colors.items():
        p.setColor(role, QColor(value))
    return p
