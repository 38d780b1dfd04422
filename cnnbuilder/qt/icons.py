"""SVG icons shipped in cnnbuilder.resources/icons. They draw with `currentColor`, which we replace
by the palette's text colour (or a category colour) before rendering, so they follow the theme."""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from .theme import category_color

_SIZES = (16, 20, 24, 32, 48)


@cache
def _svg_text(name: str) -> str:
    return (resources.files("cnnbuilder.resources") / "icons" / f"{name}.svg").read_text(encoding="utf-8")


def _render(svg: str, size: int, ratio: float) -> QPixmap:
    px = QPixmap(int(size * ratio), int(size * ratio))
    px.fill(Qt.transparent)
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    painter = QPainter(px)
    painter.setRenderHint(QPainter.Antialiasing)
    renderer.render(painter, QRectF(0, 0, px.width(), px.height()))
    painter.end()
    px.setDevicePixelRatio(ratio)
    return px


@lru_cache(maxsize=256)
def _icon(name: str, color: str, disabled: str) -> QIcon:
    text = _svg_text(name)
    app = QApplication.instance()
    ratio = app.devicePixelRatio() if app is not None else 1.0
    icon = QIcon()
    for size in _SIZES:
        icon.addPixmap(_render(text.replace("currentColor", color), size, ratio), QIcon.Normal)
        icon.addPixmap(_render(text.replace("currentColor", disabled), size, ratio), QIcon.Disabled)
    return icon


def icon(name: str, color: QColor | str | None = None) -> QIcon:
    """A themed icon; `color` defaults to the current palette's text colour."""
    pal = QApplication.palette()
    if color is None:
        color = pal.color(QPalette.WindowText)
    disabled = pal.color(QPalette.Disabled, QPalette.WindowText).name()
    return _icon(name, QColor(color).name(), disabled)


def category_icon(category: str) -> QIcon:
    return icon(f"cat-{category.lower()}", category_color(category))


def app_icon() -> QIcon:
    return _icon("app", "#000000", "#000000")
