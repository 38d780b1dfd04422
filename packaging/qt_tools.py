"""Qt helpers for the build and the smoke test, run with the build virtualenv's Python (it has PySide6):

    python packaging/qt_tools.py icons DIR        app.svg as cnnbuilder-<size>.png at the hicolor sizes
    python packaging/qt_tools.py screenshot FILE  the whole X screen ($DISPLAY) as a PNG
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle  # noqa: E402


def icons(folder: Path) -> None:
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    folder.mkdir(parents=True, exist_ok=True)
    renderer = QSvgRenderer(str(bundle.ICON_SVG))
    if not renderer.isValid():
        raise SystemExit(f"qt_tools: cannot read {bundle.ICON_SVG}")
    for size in bundle.ICON_SIZES:
        image = QImage(size, size, QImage.Format_ARGB32_Premultiplied)
        image.fill(Qt.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.Antialiasing)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        out = bundle.icon_png(size, folder)
        if not image.save(str(out)):
            raise SystemExit(f"qt_tools: cannot write {out}")
    print(f"wrote {len(bundle.ICON_SIZES)} icons to {folder}")


def screenshot(path: Path) -> None:
    screen = QGuiApplication.primaryScreen()
    pixmap = screen.grabWindow(0)
    if pixmap.isNull() or not pixmap.save(str(path)):
        raise SystemExit(f"qt_tools: cannot grab the screen into {path}")
    print(f"wrote {path} ({pixmap.width()}×{pixmap.height()})")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("icons", "screenshot"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "icons":
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication(sys.argv[:1])
    (icons if sys.argv[1] == "icons" else screenshot)(Path(sys.argv[2]))
