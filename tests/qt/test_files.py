"""Files: save/open round trip, bad files, the save prompt on close and open, autosave and
recovery, recent files, templates, and exports."""

from __future__ import annotations

import csv
import json

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel

from cnnbuilder.core.architectures import ARCHITECTURES
from cnnbuilder.core.commands import SetParam
from cnnbuilder.core.project import FORMAT_NAME, dumps, load_project
from cnnbuilder.qt.autosave import autosave_dir
from cnnbuilder.qt.settings import recent_files
from cnnbuilder.qt.templates import TemplateDialog, templates

from .helpers import EXAMPLES, node_by_name


def _edit(window, value: int = 7) -> str:
    fc1 = node_by_name(window.document.graph, "fc1")
    assert window.document.push(SetParam(fc1, "out_features", value)) is None
    return fc1


def test_save_and_open_round_trip(window, tmp_path):
    fc1 = _edit(window, 7)
    assert window.isWindowModified() and "[*]" in window.windowTitle()
    path = tmp_path / "model.json"
    window.answers["save_path"] = str(tmp_path / "model")  # the .json suffix is added
    assert window.save()
    assert path.exists() and not window.isWindowModified()
    assert window.windowTitle().startswith("model.json")
    assert load_project(path).graph.node(fc1).params["out_features"] == 7
    assert recent_files(window.settings)[0] == str(path)
    # Change, then re-open the saved file (discarding the change): the saved state is back.
    _edit(window, 9)
    window.answers["open_path"] = str(path)
    assert window.open_dialog()
    assert window.asked[-2:] == ["save_changes", "open_path"]
    assert window.document.graph.node(fc1).params["out_features"] == 7
    assert window.scene.nodes[fc1].state.shape == "7"
    assert not window.document.undo_stack.canUndo()


def test_corrupt_and_newer_files_leave_the_project_untouched(window, tmp_path):
    before = dumps(window.document.project)
    bad = tmp_path / "broken.json"
    bad.write_text('{"format": "cnnbuilder-project", "version": 1, "nodes": [', encoding="utf-8")
    assert not window.open_path(bad)
    title, text = window.errors[-1]
    assert title == "Cannot open project" and "broken.json" in text and "not valid JSON" in text
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"format": FORMAT_NAME, "version": 99, "nodes": []}), encoding="utf-8")
    assert not window.open_path(newer)
    assert "newer cnnbuilder" in window.errors[-1][1]
    assert dumps(window.document.project) == before
    assert len(window.scene.nodes) == len(window.document.graph) == 9


def test_close_with_unsaved_changes_prompts(window, tmp_path):
    _edit(window)
    window.answers["save_changes"] = "cancel"
    assert not window.close()
    assert window.isVisible() and window.asked == ["save_changes"]
    assert window.document.is_modified()
    # Save: asks for a file name, writes it, then closes.
    window.answers["save_changes"] = "save"
    window.answers["save_path"] = str(tmp_path / "kept.json")
    assert window.close()
    assert (tmp_path / "kept.json").exists() and not window.isVisible()


def test_close_discarding_changes_and_close_hooks(window):
    calls = []
    window.add_close_hook(lambda: calls.append("stop training"))
    _edit(window)
    window.answers["save_changes"] = "discard"
    assert window.close()
    assert calls == ["stop training"]


def test_close_hook_can_keep_the_window_open(window):
    window.add_close_hook(lambda: False)
    assert not window.close() and window.isVisible()


def test_autosave_and_recovery_after_a_crash(make_window, tmp_path):
    crashed = make_window("mnist_cnn")
    fc1 = _edit(crashed, 3)
    assert crashed.autosave.save_now()
    files = list(autosave_dir().glob("*.autosave.json"))
    assert files and files[0].parent == tmp_path / "data" / "autosave"
    # A crash leaves the file behind and its lock stale; releasing the lock here does the same.
    crashed.autosave.lock.unlock()
    crashed.autosave.stop()

    fresh = make_window(None)
    fresh.answers["restore"] = True
    fresh.start()
    assert fresh.asked == ["restore"]
    assert fresh.document.graph.node(fc1).params["out_features"] == 3
    assert fresh.document.is_modified()  # restored work is unsaved work
    assert not files[0].exists()  # the orphan is consumed
    assert fresh.autosave.file.exists()  # and protected by the new session's autosave
    crashed.document.undo_stack.setClean()


def test_declined_recovery_and_clean_exit_leave_no_autosave(make_window):
    crashed = make_window("mnist_cnn")
    _edit(crashed)
    crashed.autosave.save_now()
    crashed.autosave.lock.unlock()
    crashed.autosave.stop()
    fresh = make_window(None)
    fresh.answers["restore"] = False
    fresh.start()
    assert fresh.asked == ["restore"]
    assert fresh.document.project.name == "MNIST tutorial CNN"  # the default project
    assert not list(autosave_dir().glob("*.autosave.json"))
    _edit(fresh)
    assert fresh.autosave.save_now() and fresh.autosave.file.exists()
    assert fresh.close()
    assert not fresh.autosave.file.exists()


def test_autosave_writes_only_when_modified(window):
    assert not window.autosave.save_now()
    assert not window.autosave.file.exists()
    _edit(window)
    assert window.autosave.save_now()
    assert load_project(window.autosave.file).graph.node(node_by_name(window.document.graph, "fc1")).params[
        "out_features"] == 7
    window.document.undo_stack.undo()  # back to the saved state: the autosave goes away
    assert not window.autosave.file.exists()


def test_new_from_template(window):
    keys = [t.key for t in templates()]
    assert keys[0] == "empty" and "mnist_cnn" in keys and "resnet_small" in keys
    resnet = next(t for t in templates() if t.key == "resnet_small").project()
    window.answers["template"] = resnet
    assert window.new_project()
    assert window.document.project.name == "Small ResNet" and window.document.path is None
    assert len(window.scene.nodes) == 22
    empty = templates()[0].project()
    assert [n.type for n in empty.graph] == ["Input"]


def test_template_dialog_lists_examples(qtbot):
    dialog = TemplateDialog()
    qtbot.addWidget(dialog)
    # The examples (LeNet-5 is one, listed once, as an architecture) and the architectures.
    assert dialog.list.count() == 1 + len(list(EXAMPLES.glob("*.json"))) - 1 + len(ARCHITECTURES)
    dialog.finish_thumbnails()
    assert not dialog.list.item(1).icon().isNull()  # a thumbnail drawn by the canvas
    dialog.list.setCurrentRow(0)
    project = dialog.selected_project()
    assert [n.type for n in project.graph] == ["Input"]
    assert dialog.title.text() == "Empty project" and "Input" in dialog.figures.text()


def test_start_opens_the_mnist_example_first_and_the_last_file_later(make_window, tmp_path):
    w = make_window(None)
    w.start()
    assert w.document.project.name == "MNIST tutorial CNN" and w.document.path is None
    path = tmp_path / "mine.json"
    w.answers["save_path"] = str(path)
    assert w.save_as()
    w2 = make_window(None)
    w2.start()
    assert w2.document.path == path


def test_exports(make_window, tmp_path):
    window = make_window("resnet_small")
    assert window.export_code(tmp_path / "net.py")
    code = (tmp_path / "net.py").read_text()
    compile(code, "net.py", "exec")
    assert "class Net(nn.Module)" in code and "self.block1_conv1 = nn.Conv2d(16, 16" in code
    assert window.export_summary(tmp_path / "summary.csv")
    rows = list(csv.reader((tmp_path / "summary.csv").open()))
    assert rows[0][:3] == ["block", "type", "output_shape"] and len(rows) == 1 + 22 + 1
    assert rows[-1][0] == "Total" and int(rows[-1][3]) == window.document.analysis.total_params
    assert window.export_summary(tmp_path / "summary.md")
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("# Small ResNet") and "| block1_add | Add | 16×32×32 |" in md
    assert window.export_image(tmp_path / "canvas.png")
    img = QImage(str(tmp_path / "canvas.png"))
    r = window.scene.blocks_rect()
    assert img.width() >= 2 * r.width() and img.height() >= 2 * r.height()
    assert window.export_image(tmp_path / "canvas.svg")
    svg = (tmp_path / "canvas.svg").read_text()
    assert "<svg" in svg and "block1_add" in svg
    assert window.errors == []


def test_export_code_of_an_invalid_model_explains(window, tmp_path):
    conv2 = node_by_name(window.document.graph, "conv2")
    window.document.push(SetParam(conv2, "kernel_size", 30))
    assert not window.export_code(tmp_path / "x.py")
    assert not (tmp_path / "x.py").exists()
    assert "cannot generate code" in window.errors[-1][1]


def test_window_layout_is_remembered(make_window):
    w = make_window("mnist_cnn")
    w.docks["code_dock"].hide()
    w.resize(1111, 777)
    assert w.close()
    QSettings().sync()
    w2 = make_window("mnist_cnn")
    assert not w2.docks["code_dock"].isVisible()
    assert w2.docks["summary_dock"].isVisible()


def test_add_panel_docks_a_widget_with_a_view_toggle(window, qtbot):
    dock = window.add_panel(QLabel("training"), "Training", object_name="training_dock")
    assert window.docks["training_dock"] is dock and dock.objectName() == "training_dock"
    assert window.dockWidgetArea(dock) == Qt.BottomDockWidgetArea
    assert dock.toggleViewAction() in window.panels_menu.actions()
    dock.raise_()
    qtbot.waitUntil(dock.isVisible)
    assert dock in window.tabifiedDockWidgets(window.docks["summary_dock"])  # a tab beside Summary
    dock.toggleViewAction().trigger()
    assert not dock.isVisible()
