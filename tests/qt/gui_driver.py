"""Runs `cnnbuilder FILE` (through cli.main, as the command does) once per FILE in this process,
answering every message box and closing the window once the editor is up; prints one JSON line
per FILE: the dialogs shown, the project the editor ended up with, and cli.main's exit status.

    python -m tests.qt.gui_driver FILE... [!FILE...]

For a FILE written as !FILE, the project loader raises TypeError (a loader bug) and a slot raises
ZeroDivisionError once an event loop runs. Used by test_gui_start.py in a subprocess, because what it
guards against (an exception escaping before the event loop) used to abort the whole process."""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from cnnbuilder import cli
from cnnbuilder.qt import document
from cnnbuilder.qt.app import create_app
from cnnbuilder.qt.main_window import MainWindow


def main(argv: list[str]) -> int:
    app = create_app()
    real_loader = document.load_project

    def broken_loader(path):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")

    for arg in argv:
        broken = arg.startswith("!")
        f = arg[1:] if broken else arg
        document.load_project = broken_loader if broken else real_loader
        seen: dict = {"file": f, "dialogs": []}

        def poll(seen=seen) -> None:
            boxes = [w for w in QApplication.allWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
            if boxes:
                box = boxes[-1]
                seen["dialogs"].append(f"{box.windowTitle()}: {box.text()}")
                box.done(0)
                return
            windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
            if windows and seen.get("slot_raised", True):
                seen["project"] = windows[0].document.project.name
                seen["modified"] = windows[0].document.is_modified()
                windows[0].close()

        if broken:
            seen["slot_raised"] = False

            def broken_slot(seen=seen) -> None:
                seen["slot_raised"] = True
                raise ZeroDivisionError("division by zero in a slot")

            QTimer.singleShot(0, broken_slot)
        timer = QTimer()
        timer.timeout.connect(poll)
        timer.start(50)
        seen["rc"] = cli.main([f])
        timer.stop()
        print(json.dumps(seen), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
