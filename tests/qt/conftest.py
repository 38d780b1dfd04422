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
