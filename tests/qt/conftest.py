"""GUI test fixtures: isolated QSettings and autosave directory, and scripted main windows."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from .helpers import ScriptedWindow, example


def pytest_collection_modifyitems(items):
    # The offscreen platform warns about window size hints it cannot pass on; that is not a bug.
    for item in items:
        if "tests/qt" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"))


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBUILDER_DATA_DIR", str(tmp_path / "data"))
    QSettings.setDefaultFormat(QSettings.IniFormat)
    for fmt in (QSettings.IniFormat, QSettings.NativeFormat):
        QSettings.setPath(fmt, QSettings.UserScope, str(tmp_path / "settings"))
    yield tmp_path


@pytest.fixture
def make_window(qtbot):
    def make(name: str | None = "mnist_cnn", show: bool = True) -> ScriptedWindow:
        doc = example(name) if name else None
        w = ScriptedWindow(doc)
        if doc is not None:
            doc.setParent(w)
        qtbot.addWidget(w)
        if show:
            w.show()
            qtbot.waitExposed(w)
            w.view.show_start()
        return w

    return make


@pytest.fixture
def window(make_window) -> ScriptedWindow:
    return make_window("mnist_cnn")


@pytest.fixture(scope="session", autouse=True)
def shared_training_process():
    """One training process (it imports torch: seconds) serves the whole session: a panel that shuts
    down idle hands its process on to the next panel instead of ending it (core/training/service.py)."""
    from cnnbuilder.core.training import service

    service.KEEP_SPARE = True
    yield
    service.KEEP_SPARE = False
    service.end_spares()


@pytest.fixture
def in_child(qtbot):
    """in_child(worker, "tests.qt.child_hooks:full_disk", 100, 1): run it in the training process
    and return its result; every patch made there is undone after the test (in whichever process
    it was made, handed on or not)."""
    used = []

    def call(worker, target: str, *args):
        got = []
        worker.call(target, *args, done=lambda ok, value: got.append((ok, value)))
        if worker._proc not in used:
            used.append(worker._proc)
        qtbot.waitUntil(lambda: bool(got), timeout=60_000)
        ok, value = got[0]
        assert ok, value
        return value

    yield call
    for proc in used:
        if proc is not None and proc.alive:
            proc.request("call", 0, "tests.qt.child_hooks:undo", ())
            assert proc.wait_idle(30)
