"""Runs the editor as `cnnbuilder` does (cnnbuilder.qt.app.run) and scripts it from a timer, printing
one JSON line per step; used by test_training_process.py in a subprocess, because "the GUI process
never imports torch" and "quitting leaves no training process" are about a whole process.

    python -m tests.qt.startup_driver quit   # load, train, export ONNX, start a long run, quit
    python -m tests.qt.startup_driver kill   # load, start a long run, then SIGKILL this process
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from cnnbuilder.qt import app as qt_app
from cnnbuilder.qt import onnx_export
from cnnbuilder.qt.main_window import MainWindow
from cnnbuilder.qt.training import TrainingPanel

TINY = {"dataset": "shapes", "shapes_train": 200, "shapes_test": 40, "batch_size": 32, "epochs": 1, "lr": 0.003}
LONG = {**TINY, "epochs": 500}


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main(mode: str, out_dir: str) -> int:
    application = qt_app.create_app()
    # Quitting closes the window, which asks about the running run and the unsaved settings: say so
    # and answer as a user who wants out would.
    MainWindow.ask_save_changes = lambda self: say(step="asked", what="save_changes") or "discard"
    TrainingPanel.ask_stop_training = lambda self: say(step="asked", what="stop_training") or True
    steps = scenario(mode, out_dir)
    state = {"window": None, "last": None, "longest": 0.0, "at": 0}

    def tick() -> None:
        now = time.perf_counter()
        if state["window"] is None:  # the GUI thread's longest stall counts from the window's first tick
            windows = [w for w in application.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
            if not windows:
                return
            state["window"] = windows[0]
        elif state["last"] is not None:
            state["longest"] = max(state["longest"], now - state["last"])
        state["last"] = now
        try:
            if state["at"] < len(steps) and steps[state["at"]](state):
                state["at"] += 1
        except Exception as exc:  # noqa: BLE001 - a failed step ends the scenario with the reason
            say(step="error", error=f"{type(exc).__name__}: {exc}", at=state["at"])
            timer.stop()
            application.exit(3)

    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(tick)
    timer.start()
    rc = qt_app.run(None)
    say(step="returned", rc=rc, torch_in_gui="torch" in sys.modules)
    return rc


def scenario(mode: str, out_dir: str):
    """Steps: each is called once per 20 ms tick until it returns True, then the next one runs."""

    def first(state) -> bool:
        w = state["window"]
        b = w.training_panel.train_button
        say(step="shown", button=b.text(), enabled=b.isEnabled(), state=w.training_panel.worker.state)
        return True

    def until(cond):
        def step(state) -> bool:
            return cond(state["window"])
        return step

    def once(fn):
        def step(state) -> bool:
            fn(state)
            return True
        return step

    def ready(state) -> None:
        w = state["window"]
        b = w.training_panel.train_button
        say(step="ready", button=b.text(), enabled=b.isEnabled(), longest_stall_ms=1000 * state["longest"],
            torch_in_gui="torch" in sys.modules, pid=w.training_panel.worker.pid)

    def train(training):
        def step(state) -> None:
            w = state["window"]
            w.document.set_training(training)
            if not w.train():
                raise RuntimeError(f"Train refused: {w.training_panel.error_label.text()}")
        return step

    def trained(state) -> None:
        w = state["window"]
        panel = w.training_panel
        w.document.set_selection(["n2"])
        panel.tabs.setCurrentWidget(panel.features)
        say(step="trained", progress=panel.progress.format(), torch_in_gui="torch" in sys.modules)

    def onnx(state) -> None:
        w = state["window"]
        w.ask_save_path = lambda *a: os.path.join(out_dir, "model.onnx")
        onnx_export.export_onnx_dialog(w)

    def exported(w) -> bool:
        return "verified" in w.statusBar().currentMessage() or "failed" in w.statusBar().currentMessage()

    def report_export(state) -> None:
        w = state["window"]
        say(step="exported", status=w.statusBar().currentMessage(), maps=w.training_panel.features.frames,
            torch_in_gui="torch" in sys.modules)

    def running(state) -> None:
        w = state["window"]
        say(step="running", pid=w.training_panel.worker.pid, torch_in_gui="torch" in sys.modules)

    steps = [first, until(lambda w: w.training_panel.worker.state == "ready"), once(ready)]
    if mode == "quit":
        steps += [once(train(TINY)), until(lambda w: not w.training_panel.is_running()), once(trained),
                  until(lambda w: w.training_panel.features.frames > 0), once(onnx), until(exported),
                  once(report_export)]
    steps += [once(train(LONG)), until(lambda w: w.training_panel.progress.value() > 0), once(running)]
    if mode == "quit":
        steps.append(once(lambda state: QApplication.instance().quit()))
    else:
        steps.append(once(lambda state: os.kill(os.getpid(), signal.SIGKILL)))
    return steps


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
