"""Application start-up: HiDPI, names for QSettings, the theme (following the system's light or
dark scheme unless the user picked one), and `run()` for `cnnbuilder [gui] [file]`."""

from __future__ import annotations

import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from .. import __version__
from .icons import app_icon
from .settings import APPLICATION, ORGANIZATION, app_settings
from .theme import apply_theme


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        # Fractional scale factors (125 %, 150 %) as the system sets them, not rounded to 1 or 2.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(list(argv if argv is not None else sys.argv[:1]))
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("cnnbuilder")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(app_icon())
    follow_theme(app)
    return app


def follow_theme(app: QApplication) -> None:
    """Apply the chosen theme now, and again whenever the system switches light/dark."""
    apply_theme(app, str(app_settings().value("theme", "system")))
    if not app.property("cnnbuilder_follows_theme"):
        app.setProperty("cnnbuilder_follows_theme", True)
        app.styleHints().colorSchemeChanged.connect(
            lambda scheme: apply_theme(app, str(app_settings().value("theme", "system"))))


class _ShownReporter(QObject):
    """For start-up benchmarks (bench/bench_startup.py): with CNNBUILDER_REPORT_SHOWN set, print the
    wall-clock time once the main window has first been painted on screen, and quit if it says "quit"."""

    def __init__(self, window, quit_after: bool):
        super().__init__(window)
        self.quit_after = quit_after
        self.handle = window.windowHandle()
        self.handle.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Expose and self.handle.isExposed():
            self.handle.removeEventFilter(self)
            QTimer.singleShot(0, self.report)  # after this expose's paint has been flushed
        return False

    def report(self) -> None:
        print(f"cnnbuilder: window shown at {time.time():.6f}", flush=True)
        if self.quit_after:
            QApplication.instance().quit()


def run(path: str | None = None) -> int:
    """Open the editor (with `path`, if given) and run until the window closes."""
    from .main_window import MainWindow

    app = create_app()
    window = MainWindow()
    window.show()
    if report := os.environ.get("CNNBUILDER_REPORT_SHOWN"):
        _ShownReporter(window, quit_after=report == "quit")
    window.start(path)
    return app.exec()


if __name__ == "__main__":  # python -m cnnbuilder.qt.app [file]
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else None))
