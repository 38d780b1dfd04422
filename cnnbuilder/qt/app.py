"""Application start-up: HiDPI, names for QSettings, the theme (following the system's light or
dark scheme unless the user picked one), the guard against unexpected errors, and `run()` for
`cnnbuilder [gui] [file]`."""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from .. import __version__
from ..core.fileio import describe_error
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


class ErrorGuard:
    """sys.excepthook for the GUI. PySide hands an exception that escapes a slot or an event
    handler to sys.excepthook; Python's default prints it and the app carries on in an unknown
    state, and one escaping before the event loop ended the process (leaving the training thread
    running: "QThread: Destroyed while thread is still running", then SIGABRT). The guard logs the
    traceback, tells the user once with a dialog (later ones go to the log and the status bar, so
    a repeating error cannot bury the window in dialogs), and keeps running."""


    def __init__(self, window_of=None):
        self.window_of = window_of or _active_main_window
        self.errors = 0
        self._previous = None

    def install(self) -> ErrorGuard:
        self._previous = sys.excepthook
        sys.excepthook = self
        return self

    def uninstall(self) -> None:
        if sys.excepthook is self:
            sys.excepthook = self._previous or sys.__excepthook__

    def __call__(self, etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(etype, KeyboardInterrupt):  # Ctrl+C in the terminal: end as asked
            app = QApplication.instance()
            if app is not None:
                app.quit()
            return
        self.errors += 1
        logging.getLogger("cnnbuilder").error("unexpected error (the editor carries on)", exc_info=(etype, value, tb))
        reason = describe_error(value)
        window = self.window_of()
        if window is not None and hasattr(window, "show_status"):
            window.show_status(f"Unexpected error: {reason}", 30_000)
        if self.errors == 1:
            # Later, from the event loop: not from inside sys.excepthook.
            QTimer.singleShot(0, lambda: self.show_dialog(self.window_of(), reason))

    def show_dialog(self, parent: QWidget | None, reason: str) -> None:
        from .main_window import show_message

        show_message(parent, QMessageBox.Warning, "Unexpected error",
                     f"cnnbuilder hit an unexpected error and carried on:\n\n{reason}\n\nSaving your work under a "
                     "new name is a good idea. The details were written to the log (standard error).")


def _active_main_window() -> QWidget | None:
    from .main_window import MainWindow

    app = QApplication.instance()
    if app is None:
        return None
    windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    active = app.activeWindow()
    return active if active in windows else (windows[0] if windows else None)


class _ShownReporter(QObject):
    """For start-up benchmarks (bench/bench_startup.py): with CNNBUILDER_REPORT_SHOWN set, print the
    wall-clock time once the main window has first been painted on screen, and quit if it says "quit".

    With "ready" it goes on until the training process has loaded PyTorch, timing the GUI thread
    meanwhile with a 10 ms timer: the longest gap between two ticks after the window was shown is
    the longest the window stood frozen. Then it prints that and quits."""

    def __init__(self, window, mode: str):
        super().__init__(window)
        self.mode = mode
        self.window = window
        self.handle = window.windowHandle()
        self.handle.installEventFilter(self)
        self.shown_at: float | None = None
        self.last = time.perf_counter()
        self.longest = 0.0
        self.ticks = 0
        if mode == "ready":
            self.timer = QTimer(self)
            self.timer.setTimerType(Qt.PreciseTimer)
            self.timer.setInterval(10)
            self.timer.timeout.connect(self.tick)
            self.timer.start()

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Expose and self.handle.isExposed():
            self.handle.removeEventFilter(self)
            QTimer.singleShot(0, self.report)  # after this expose's paint has been flushed
        return False

    def tick(self) -> None:
        now = time.perf_counter()
        if self.shown_at is not None:
            self.longest = max(self.longest, now - self.last)
            self.ticks += 1
        self.last = now
        worker = self.window.training_panel.worker
        if self.shown_at is not None and worker.state in ("ready", "failed"):
            self.timer.stop()
            print(f"cnnbuilder: torch {worker.state} at {time.time():.6f} (loaded in {worker.load_seconds or 0:.3f} s "
                  f"in the training process); longest GUI stall after the window was shown "
                  f"{1000 * self.longest:.1f} ms over {self.ticks} ticks; torch in the GUI process: "
                  f"{'torch' in sys.modules}", flush=True)
            QApplication.instance().quit()

    def report(self) -> None:
        print(f"cnnbuilder: window shown at {time.time():.6f}", flush=True)
        self.shown_at = self.last = time.perf_counter()
        if self.mode == "quit":
            QApplication.instance().quit()


def run(path: str | None = None) -> int:
    """Open the editor (with `path`, if given) and run until the window closes. No exception ends
    it: a bad file gets a dialog and the editor starts with the example project."""
    from .main_window import MainWindow

    app = create_app()
    guard = ErrorGuard().install()
    window = None
    try:
        window = MainWindow()
        window.show()
        if report := os.environ.get("CNNBUILDER_REPORT_SHOWN"):
            _ShownReporter(window, report)
        try:
            window.start(path)
        except Exception:
            guard(*sys.exc_info())
        return app.exec()
    finally:
        # Every way out ends the training thread first: Qt aborts the process when a running
        # QThread is destroyed.
        if window is not None:
            window.training_panel.shutdown()
        guard.uninstall()


if __name__ == "__main__":  # python -m cnnbuilder.qt.app [file]
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else None))
