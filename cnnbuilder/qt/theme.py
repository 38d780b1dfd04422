"""Light and dark palettes (Fusion style, following the system colour scheme unless the user picks
one) and the colours the canvas and code view derive from them."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")

# One hue per palette category; chosen to stay readable with white header text in both themes.
CATEGORY_COLORS = {
    "Convolution": "#2f6fd6",
    "Pooling": "#0e8a9a",
    "Activation": "#d97706",
    "Normalization": "#7c4dcc",
    "Linear": "#16915c",
    "Merge": "#c2418a",
    "Utility": "#5b6676",
    "Group": "#3d5a80",  # a collapsed group of blocks
}
ACCENT = "#2f81f7"
ERROR = "#e5484d"
WARNING = "#d08700"  # amber: valid, but does not fit the chosen data yet


VERDICT_COLORS = {"ok": "#1f9d55", "error": ERROR, "warning": WARNING}


def verdict_html(verdict) -> str:
    """The verdict's headline ("✓ valid · ⚠ 1 warning") in its colours, for rich-text labels."""
    return " · ".join(f"<span style='color:{VERDICT_COLORS[level]}'>{text}</span>" for level, text in verdict.parts())


def category_color(category: str) -> QColor:
    return QColor(CATEGORY_COLORS.get(category, CATEGORY_COLORS["Utility"]))


def system_prefers_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def wants_dark(mode: str) -> bool:
    if mode == "dark":
        return True
    if mode == "light":
        return False
    return system_prefers_dark()


def _palette(roles: dict, disabled: str) -> QPalette:
    p = QPalette()
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, QColor(disabled))
    return p


def light_palette() -> QPalette:
    roles = {
        QPalette.Window: "#eef0f3", QPalette.WindowText: "#1d2127", QPalette.Base: "#ffffff",
        QPalette.AlternateBase: "#f5f6f8", QPalette.ToolTipBase: "#fffdf2", QPalette.ToolTipText: "#1d2127",
        QPalette.PlaceholderText: "#8a909a", QPalette.Text: "#1d2127", QPalette.Button: "#f6f7f9",
        QPalette.ButtonText: "#1d2127", QPalette.BrightText: "#ffffff", QPalette.Light: "#ffffff",
        QPalette.Midlight: "#e4e6ea", QPalette.Mid: "#c4c8cf", QPalette.Dark: "#9aa0a9", QPalette.Shadow: "#5c6169",
        QPalette.Highlight: ACCENT, QPalette.HighlightedText: "#ffffff", QPalette.Link: "#1f66d1",
        QPalette.LinkVisited: "#6f42c1",
    }
    return _palette(roles, disabled="#9aa0a9")


def dark_palette() -> QPalette:
    roles = {
        QPalette.Window: "#26282c", QPalette.WindowText: "#e3e5e8", QPalette.Base: "#1c1e21",
        QPalette.AlternateBase: "#232529", QPalette.ToolTipBase: "#33363b", QPalette.ToolTipText: "#e3e5e8",
        QPalette.PlaceholderText: "#80868f", QPalette.Text: "#e3e5e8", QPalette.Button: "#303338",
        QPalette.ButtonText: "#e3e5e8", QPalette.BrightText: "#ffffff", QPalette.Light: "#45484e",
        QPalette.Midlight: "#3a3d42", QPalette.Mid: "#2e3135", QPalette.Dark: "#17181b", QPalette.Shadow: "#0b0c0d",
        QPalette.Highlight: ACCENT, QPalette.HighlightedText: "#ffffff", QPalette.Link: "#6aa6ff",
        QPalette.LinkVisited: "#b392f0",
    }
    return _palette(roles, disabled="#6b7078")


def apply_theme(app: QApplication, mode: str = "system") -> bool:
    """Fusion everywhere (one look to test and screenshot) with our light or dark palette.
    Returns True when the dark palette was applied."""
    dark = wants_dark(mode)
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    app.setPalette(dark_palette() if dark else light_palette())
    return dark


def is_dark(palette: QPalette | None = None) -> bool:
    palette = palette or QApplication.palette()
    return palette.color(QPalette.Window).lightness() < 128


@dataclass(frozen=True)
class CanvasColors:
    background: QColor
    grid: QColor
    grid_major: QColor
    node_fill: QColor
    node_border: QColor
    text: QColor
    muted: QColor
    header_text: QColor
    edge: QColor
    accent: QColor
    error: QColor
    ok: QColor
    warning: QColor


def canvas_colors(palette: QPalette | None = None) -> CanvasColors:
    if is_dark(palette):
        return CanvasColors(
            background=QColor("#1b1d20"), grid=QColor("#24272b"), grid_major=QColor("#2c3035"),
            node_fill=QColor("#2a2d32"), node_border=QColor("#474b53"), text=QColor("#e6e8eb"),
            muted=QColor("#9aa1ab"), header_text=QColor("#ffffff"), edge=QColor("#7d8590"),
            accent=QColor(ACCENT), error=QColor("#ff6369"), ok=QColor("#3fb97a"), warning=QColor("#f5a623"),
        )
    return CanvasColors(
        background=QColor("#f6f7f9"), grid=QColor("#e9ebef"), grid_major=QColor("#dde0e5"),
        node_fill=QColor("#ffffff"), node_border=QColor("#c3c8d0"), text=QColor("#1d2127"),
        muted=QColor("#646b76"), header_text=QColor("#ffffff"), edge=QColor("#8a919c"),
        accent=QColor(ACCENT), error=QColor(ERROR), ok=QColor("#1f9d55"), warning=QColor(WARNING),
    )


@dataclass(frozen=True)
class PlotColors:
    """Colours of the training plots, feature maps and confusion matrix (pyqtgraph takes them as
    QColors): they follow the palette like the canvas does."""

    background: QColor
    foreground: QColor  # axes, tick labels, titles, legend text
    grid: QColor
    legend_fill: QColor
    cell_text: QColor  # counts on a pale heat-map cell
    cell_text_strong: QColor  # counts on a saturated cell
    dark: bool


def plot_colors(palette: QPalette | None = None) -> PlotColors:
    if is_dark(palette):
        return PlotColors(
            background=QColor("#1c1e21"), foreground=QColor("#c9ccd1"), grid=QColor("#8a919c"),
            legend_fill=QColor(38, 40, 44, 210), cell_text=QColor("#e3e5e8"), cell_text_strong=QColor("#ffffff"),
            dark=True,
        )
    return PlotColors(
        background=QColor("#ffffff"), foreground=QColor("#3a3f47"), grid=QColor("#9aa0a9"),
        legend_fill=QColor(255, 255, 255, 210), cell_text=QColor("#1d2127"), cell_text_strong=QColor("#ffffff"),
        dark=False,
    )
