"""Defects found trying the app as a new user (issue 9, section 5)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QSpinBox


def _focused_spin(window, qtbot, name: str) -> QSpinBox:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    window.document.set_selection([window.document.graph.find(name).id])
    spin = window.inspector.editors["out_channels"].widget.findChild(QSpinBox) \
        or window.inspector.editors["out_channels"].widget
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=3000)
    return spin


def test_ctrl_z_in_an_inspector_field_undoes_the_document(window, qtbot):
    g = window.document.graph
    conv = g.find("conv1")
    spin = _focused_spin(window, qtbot, "conv1")
    spin.setValue(24)
    assert conv.params["out_channels"] == 24
    qtbot.keyClick(spin, Qt.Key_Z, Qt.ControlModifier)
    assert conv.params["out_channels"] == 16
    qtbot.keyClick(spin, Qt.Key_Y, Qt.ControlModifier)
    assert conv.params["out_channels"] == 24
    qtbot.keyClick(spin, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)  # nothing left to redo
    assert conv.params["out_channels"] == 24


def test_ctrl_z_in_the_name_field_undoes_its_own_typing_first(window, qtbot):
    g = window.document.graph
    spin = _focused_spin(window, qtbot, "conv1")
    spin.setValue(20)
    name = window.inspector.name_edit
    name.setFocus()
    qtbot.keyClicks(name, "xyz")
    qtbot.keyClick(name, Qt.Key_Z, Qt.ControlModifier)  # uncommitted typing: the field's own undo
    assert g.find("conv1").params["out_channels"] == 20
    assert name.text() != "conv1xyz"


def test_delete_and_reconnect_from_the_edit_menu(window):
    g = window.document.graph
    relu1, pool1 = g.find("relu1").id, g.find("pool1").id
    assert window.act_delete_reconnect.shortcut().toString() == "Ctrl+Shift+Del"
    window.document.set_selection([relu1])
    window.act_delete_reconnect.trigger()
    assert relu1 not in g and g.inputs(pool1) == [g.find("conv1").id]
    assert window.document.undo_stack.undoText() == "Delete and reconnect"
    window.document.undo_stack.undo()
    assert g.inputs(pool1) == [relu1]
    window.document.set_selection([g.find("flatten1").id])
    window.act_delete_reconnect.trigger()
    assert g.find("flatten1") is not None
    assert "fc1 would fail" in window.statusBar().currentMessage()


def test_summary_total_counts_one_block_in_the_singular(make_window):
    from cnnbuilder.core.commands import remove_nodes

    w = make_window("mnist_cnn", show=False)
    g = w.document.graph
    w.document.push(remove_nodes(g, [n.id for n in g][1:]))
    model = w.summary_panel.table.model()
    texts = [model.index(model.rowCount() - 1, c).data() for c in range(model.columnCount())]
    assert "1 block" in texts and "1 blocks" not in texts


def test_a_block_dropped_just_below_a_free_output_is_connected(window, qtbot):
    from PySide6.QtCore import QPointF

    from cnnbuilder.qt.canvas.items import NODE_H, NODE_W

    from .helpers import drop_block

    g = window.document.graph
    fc1 = g.find("fc1")  # the model's last block: its output is free
    at = QPointF(fc1.pos[0] + NODE_W / 2 + 20, fc1.pos[1] + NODE_H + 40 + NODE_H / 2)
    window.view.centerOn(at)
    drop_block(window.view, "ReLU", at)
    new = g.nodes[-1]
    assert g.inputs(new.id) == [fc1.id]
    assert "Connected fc1" in window.statusBar().currentMessage()
    window.document.undo_stack.undo()  # one step removes block and connection
    assert new.id not in g and g.outputs(fc1.id) == []
    # Far below (or beside) a block nothing is wired.
    far = QPointF(fc1.pos[0] + NODE_W / 2, fc1.pos[1] + NODE_H + 400)
    window.view.centerOn(far)
    drop_block(window.view, "ReLU", far)
    assert g.inputs(g.nodes[-1].id) == []


def test_block_above_geometry():
    from cnnbuilder.core.placement import block_above

    size = (180.0, 74.0)
    blocks = [("a", (0.0, 0.0)), ("b", (0.0, 200.0)), ("c", (400.0, 0.0))]
    assert block_above(blocks, (10.0, 74.0 + 30), size) == "a"
    assert block_above(blocks, (10.0, 274.0 + 5), size) == "b"
    assert block_above(blocks, (200.0, 104.0), size) is None  # beside, not below
    assert block_above(blocks, (10.0, 74.0 + 500), size) is None


def test_every_template_opens_ready_to_train_on_the_built_in_data(window):
    from cnnbuilder.core.shapes import analyze
    from cnnbuilder.qt.templates import templates

    opened = 0
    for t in templates():
        for choice in range(len(t.choices)):
            project = t.project(choice)
            if t.key == "empty" or analyze(project.graph).output_shape != (10,):
                continue  # 1000 ImageNet classes: an amber warning on shapes' 10 (tests/qt/test_templates.py)
            window.answers["template"] = project
            window.new_project()
            panel = window.training_panel
            assert panel.config().dataset == "shapes"
            assert not panel.fit_frame.isVisibleTo(panel), (t.key, panel.fit_frame.label.text())
            assert window.document.verdict.warnings == () and window.document.verdict.ok, t.key
            opened += 1
    assert opened >= 5 + 11  # the examples but LeNet-5, and every architecture at CIFAR-10 or MNIST size


def test_shapes_fitting_follows_the_config_rules():
    from cnnbuilder.core.training.config import shapes_fitting

    assert shapes_fitting((3, 32, 32), {}) == {"dataset": "shapes", "shapes_channels": 3, "shapes_size": 32}
    assert shapes_fitting((3, 32, 16), {"epochs": 2}) == {"epochs": 2}  # not square: unchanged
    assert shapes_fitting((2, 32, 32), {}) == {}  # two channels: shapes cannot
    assert shapes_fitting((1, 8, 8), {}) == {}  # below the smallest size shapes draws
    assert shapes_fitting((1, 28, 28), {"dataset": "mnist"}) == {"dataset": "mnist"}


def test_save_as_names_an_untitled_project_and_its_code(make_window, qtbot, tmp_path):
    w = make_window("mnist_cnn", show=False)
    w.document.project.name = "Untitled"  # as File > New from a template leaves it
    w.answers["save_path"] = str(tmp_path / "digits.json")
    assert w.save_as()
    assert w.document.project.name == "digits"
    qtbot.waitUntil(lambda: w.code_panel.editor.toPlainText().startswith('"""digits'), timeout=5000)


def test_training_file_dialogs_start_in_the_project_folder_else_the_last_one_used(make_window, tmp_path):
    from pathlib import Path

    w = make_window("mnist_cnn", show=False)
    panel = w.training_panel
    w.document.project.path = None
    assert panel._suggest("", "checkpoint") == str(Path.home())
    assert panel._remember(str(tmp_path / "a" / "run.ckpt"), "checkpoint") == str(tmp_path / "a" / "run.ckpt")
    panel._remember(str(tmp_path / "exports"), "export", folder=True)
    assert panel._suggest("x.ckpt", "checkpoint") == str(tmp_path / "a" / "x.ckpt")  # per kind of file
    assert panel._suggest("", "export") == str(tmp_path / "exports")
    assert panel._remember("", "checkpoint") is None  # cancelled: nothing remembered
    w.document.project.path = tmp_path / "proj" / "m.json"
    assert panel._suggest("", "checkpoint") == str(tmp_path / "proj")
