"""No traceback, no lost project: saves, exports and opens that fail (for any reason) end in a
dialog naming the file, the project stays modified and the old file whole; links, read-only files
and modes are respected; unexpected exceptions in slots are caught by the app's guard."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from cnnbuilder.core import fileio
from cnnbuilder.core.commands import SetParam
from cnnbuilder.core.project import load_project
from cnnbuilder.qt import document as document_module
from cnnbuilder.qt.app import ErrorGuard

from .helpers import node_by_name

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions and links")


def _edit(window, value: int = 7) -> None:
    fc1 = node_by_name(window.document.graph, "fc1")
    assert window.document.push(SetParam(fc1, "out_features", value)) is None


def _saved(window, path: Path) -> None:
    window.answers["save_path"] = str(path)
    assert window.save_as()
    _edit(window, 11)


FAILURES = [
    UnicodeEncodeError("utf-8", "name \ud800", 5, 6, "surrogates not allowed"),
    OSError(28, "No space left on device"),
    PermissionError(13, "Permission denied"),
    RuntimeError("serializer bug"),
    TypeError("'NoneType' object is not iterable"),
    RecursionError("maximum recursion depth exceeded"),
]


@pytest.mark.parametrize("error", FAILURES, ids=lambda e: type(e).__name__)
def test_a_failing_save_says_why_and_keeps_the_work(window, tmp_path, monkeypatch, error):
    target = tmp_path / "model.json"
    _saved(window, target)
    before = target.read_text()

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(document_module, "atomic_write_text", fail)
    assert not window.save()
    title, text = window.errors[-1]
    assert title == "Cannot save project" and str(target) in text and "\n" not in text
    assert window.document.is_modified() and window.isWindowModified()
    assert target.read_text() == before and window.document.path == target
    # Save As to a new name fails the same way and keeps the old name.
    window.answers["save_path"] = str(tmp_path / "other.json")
    assert not window.save_as()
    assert str(tmp_path / "other.json") in window.errors[-1][1] and window.document.path == target
    assert window.document.is_modified() and not (tmp_path / "other.json").exists()


def test_a_name_that_cannot_be_encoded_is_reported_not_raised(window, tmp_path):
    target = tmp_path / "model.json"
    _saved(window, target)
    before = target.read_text()
    window.document.project.name = "broken \ud800 name"  # cleaned where it comes in ...
    assert window.document.project.name == "broken \ufffd name"
    object.__setattr__(window.document.project, "name", "broken \ud800 name")  # ... a bug that got past it:
    assert not window.save()
    assert "U+D800" in window.errors[-1][1] and str(target) in window.errors[-1][1]
    assert target.read_text() == before and window.document.is_modified()
    window.document.project.name = "fixed"
    assert window.save() and not window.document.is_modified()
    assert load_project(target).name == "fixed"


def test_a_folder_as_the_target_is_reported(window, tmp_path):
    folder = tmp_path / "folder.json"
    folder.mkdir()
    _edit(window)
    window.answers["save_path"] = str(folder)
    assert not window.save_as()
    assert str(folder) in window.errors[-1][1] and "folder" in window.errors[-1][1]
    assert window.document.is_modified() and window.document.path is None


def test_close_with_a_failing_save_keeps_the_window_open(window, tmp_path, monkeypatch):
    _saved(window, tmp_path / "model.json")
    closed = []
    window.add_close_hook(lambda: closed.append(True))
    monkeypatch.setattr(document_module, "atomic_write_text",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    window.answers["save_changes"] = "save"
    assert not window.close()
    assert window.isVisible() and window.document.is_modified() and not closed
    assert "No space left on device" in window.errors[-1][1]
    monkeypatch.undo()
    assert window.close() and closed  # once the disk has room, Save closes


def test_autosave_failures_go_to_the_status_bar_once(window, monkeypatch):
    _edit(window)

    def fail(*args, **kwargs):
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr("cnnbuilder.qt.autosave.atomic_write_text", fail)
    reasons = []
    window.autosave.failed.connect(reasons.append)
    assert not window.autosave.save_now()
    assert not window.autosave.save_now()  # the same news is not repeated
    assert len(reasons) == 1 and "U+D800" in reasons[0]
    assert "Autosave failed" in window.statusBar().currentMessage()
    assert window.errors == [] and window.document.is_modified()
    monkeypatch.undo()
    assert window.autosave.save_now() and window.autosave.last_error is None


@posix_only
def test_read_only_files_are_overwritten_only_after_asking(window, tmp_path):
    target = tmp_path / "model.json"
    _saved(window, target)
    os.chmod(target, 0o444)
    before = target.read_text()
    window.answers["overwrite_read_only"] = False
    assert not window.save()
    assert window.asked[-1] == "overwrite_read_only" and window.errors == []
    assert target.read_text() == before and window.document.is_modified()
    assert "read-only" in window.statusBar().currentMessage()
    window.answers["overwrite_read_only"] = True
    assert window.save() and not window.document.is_modified()
    assert target.read_text() != before and stat.S_IMODE(target.stat().st_mode) == 0o444


@posix_only
def test_saving_through_a_symlink_keeps_the_link(window, tmp_path):
    real = tmp_path / "real.json"
    link = tmp_path / "link.json"
    _saved(window, real)
    link.symlink_to(real)
    assert window.open_path(link)
    _edit(window, 5)
    assert window.save()
    assert link.is_symlink() and window.document.path == link
    assert load_project(real).graph.node(node_by_name(window.document.graph, "fc1")).params["out_features"] == 5


EXPORTS = [("export_code", ".py", "Cannot export code"), ("export_summary", ".csv", "Cannot export summary"),
           ("export_summary", ".md", "Cannot export summary"), ("export_image", ".png", "Cannot export image"),
           ("export_image", ".svg", "Cannot export image")]


@pytest.mark.parametrize("method, suffix, title", EXPORTS)
def test_every_export_reports_failures(window, tmp_path, monkeypatch, method, suffix, title):
    export = getattr(window, method)
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    assert not export(folder)
    assert window.errors[-1][0] == title and str(folder) in window.errors[-1][1]
    missing = tmp_path / "no" / f"such{suffix}"
    assert not export(missing)
    assert str(missing) in window.errors[-1][1]
    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"old")
    monkeypatch.setattr("cnnbuilder.qt.main_window.atomic_write",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("writer bug")))
    assert not export(target)
    assert "RuntimeError: writer bug" in window.errors[-1][1] and target.read_bytes() == b"old"
    monkeypatch.undo()
    if os.name != "nt":
        os.chmod(target, 0o444)
        window.answers["overwrite_read_only"] = False
        assert not export(target) and target.read_bytes() == b"old"
        window.answers["overwrite_read_only"] = True
    assert export(target) and target.read_bytes() != b"old"
    assert len(window.errors) == 3


def test_export_reports_a_failing_generator(window, tmp_path, monkeypatch):
    monkeypatch.setattr("cnnbuilder.qt.main_window.summary_csv", lambda *a: 1 / 0)
    assert not window.export_summary(tmp_path / "s.csv")
    assert "ZeroDivisionError" in window.errors[-1][1] and not (tmp_path / "s.csv").exists()
    monkeypatch.setattr(window.scene, "render_image", lambda *a: [][1])
    assert not window.export_image(tmp_path / "i.png")
    assert "IndexError" in window.errors[-1][1]


def test_new_files_honour_the_umask(window, tmp_path):
    if os.name == "nt":
        pytest.skip("POSIX modes")
    old = os.umask(0o022)
    try:
        _saved(window, tmp_path / "m.json")
        assert window.export_code(tmp_path / "m.py")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "m.py").stat().st_mode) == 0o644


@pytest.mark.parametrize("error", [TypeError("bad operand"), OverflowError("int too large to convert to float"),
                                   KeyError("x"), RecursionError("deep")], ids=lambda e: type(e).__name__)
def test_a_loader_bug_is_a_dialog_and_the_project_is_untouched(window, tmp_path, monkeypatch, error):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    names = [n.name for n in window.document.graph]

    def fail(path):
        raise error

    monkeypatch.setattr(document_module, "load_project", fail)
    assert not window.open_path(bad)
    title, text = window.errors[-1]
    assert title == "Cannot open project" and str(bad) in text and type(error).__name__ in text
    assert [n.name for n in window.document.graph] == names


def test_devices_and_folders_are_refused_quickly(window, tmp_path):
    assert not window.open_path(tmp_path)
    assert str(tmp_path) in window.errors[-1][1]
    if os.path.exists("/dev/zero"):
        assert not window.open_path("/dev/zero")  # reading it would never end
        assert "/dev/zero" in window.errors[-1][1] and "not a regular file" in window.errors[-1][1]


def test_start_with_a_bad_file_shows_why_and_opens_the_example(make_window, tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text("[" * 5000)
    w = make_window(None)
    monkeypatch.setattr(document_module, "load_project", lambda p: (_ for _ in ()).throw(TypeError("boom")))
    w.start(str(bad))
    assert str(bad) in w.errors[-1][1] and w.document.project.name == "MNIST tutorial CNN"


def test_error_guard_shows_one_dialog_then_only_logs(window, qtbot, caplog):
    shown = []
    guard = ErrorGuard(window_of=lambda: window)
    guard.show_dialog = lambda parent, reason: shown.append(reason)
    for _ in range(3):
        try:
            raise ValueError("slot broke")
        except ValueError:
            guard(*sys.exc_info())
    assert shown == []  # not from inside the hook: from the event loop
    qtbot.waitUntil(lambda: shown == ["ValueError: slot broke"])
    qtbot.wait(20)
    assert shown == ["ValueError: slot broke"] and guard.errors == 3
    assert "Unexpected error: ValueError: slot broke" in window.statusBar().currentMessage()
    assert sum("unexpected error" in r.message for r in caplog.records) == 3


def test_the_guard_is_only_installed_by_run_so_pytest_qt_still_captures(window, qtbot):
    hook = sys.excepthook  # pytest-qt's, while a test runs: building a window does not replace it
    assert not isinstance(hook, ErrorGuard)
    guard = ErrorGuard().install()
    assert sys.excepthook is guard
    guard.uninstall()
    assert sys.excepthook is hook
    with qtbot.capture_exceptions() as caught:
        QTimer.singleShot(0, lambda: 1 / 0)
        qtbot.wait(20)
    assert caught and caught[0][0] is ZeroDivisionError


def test_describe_error_is_the_shared_reason(window, tmp_path, monkeypatch):
    # The GUI and the writer use the one description: the dialog shows what fileio says.
    err = OSError(122, "Disk quota exceeded")
    monkeypatch.setattr(document_module, "atomic_write_text", lambda *a, **k: (_ for _ in ()).throw(err))
    window.answers["save_path"] = str(tmp_path / "q.json")
    assert not window.save_as()
    assert window.errors[-1][1] == f"{tmp_path / 'q.json'}: {fileio.describe_error(err)}"
