"""Render the app icon (assets/icons/llamadesk.svg) for the bundle: PNGs for the Linux
desktop entry, an .ico for the Windows programs and an .icns for the macOS app.

    python packaging/icons.py build/icons

Both container formats hold PNG images as they are (ICO since Windows Vista, ICNS
types ic07-ic10), so Qt's SVG renderer is all that is needed.
"""
from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "assets" / "icons" / "llamadesk.svg"
SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 32, 48, 256)
ICNS_TYPES = {128: b"ic07", 256: b"ic08", 512: b"ic09"}


def render(sizes=SIZES) -> dict[int, bytes]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - needed for painting
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SVG}")
    out = {}
    for size in sizes:
        image = QImage(size, size, QImage.Format_ARGB32)
        image.fill(Qt.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.Antialiasing)
        renderer.render(painter)
        painter.end()
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.WriteOnly)
        image.save(buf, "PNG")
        out[size] = bytes(data)
    return out


def ico(pngs: dict[int, bytes]) -> bytes:
    sizes = [s for s in ICO_SIZES if s in pngs]
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, images = b"", b""
    for s in sizes:
        data = pngs[s]
        entries += struct.pack("<BBBBHHII", s % 256, s % 256, 0, 0, 1, 32, len(data), offset + len(images))
        images += data
    return header + entries + images


def icns(pngs: dict[int, bytes]) -> bytes:
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[s])) + pngs[s]
                    for s, kind in ICNS_TYPES.items() if s in pngs)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else ROOT / "build" / "icons")
    out.mkdir(parents=True, exist_ok=True)
    pngs = render()
    for size, data in pngs.items():
        (out / f"llamadesk-{size}.png").write_bytes(data)
    (out / "llamadesk.ico").write_bytes(ico(pngs))
    (out / "llamadesk.icns").write_bytes(icns(pngs))
    (out / "llamadesk.svg").write_bytes(SVG.read_bytes())
    print(f"icons: {len(pngs)} PNG sizes, llamadesk.ico, llamadesk.icns in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
