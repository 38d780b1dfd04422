"""File ▸ Import ▸ PyTorch module…: the dialog checks its fields before anything runs, lists a file's
nn.Module classes without running the file, runs the import off the GUI thread with a busy bar and
a Cancel, shows a refusal in its own words (selectable) and changes nothing, and on success the
model opens as a new untitled project, fitted in the view, as New does.

core/importer is another part's: a fake module stands in for it here (the dialog only calls
`import_model` and reads `ImportResult` / `ImportRefused`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import QRectF, Qt

from cnnbuilder.core.graph import Graph
from cnnbuilder.core.project import Project
from cnnbuilder.qt.import_dialog import IMPORTER, ImportDialog


class ImportRefused(Exception):
    pass


@dataclass
class ImportResult:
    project: Project
    weights: Path | None
    notes: list[str] = field(default_factory=list)


def imported_project(shape=(3, 32, 32), name: str = "ResNet") -> Project:
    g = Graph()
    ids = [g.add_node(t, p, pos=(0.0, 120.0 * i)).id for i, (t, p) in enumerate(
        (("Input", {"shape": list(shape)}), ("Conv2d", {"out_channels": 8, "kernel_size": 3}), ("ReLU", {}),
         ("Flatten", {}), ("Linear", {"out_features": 10})))]
    for a, b in zip(ids, ids[1:], strict=False):
        g.connect(a, b)
    return Project(graph=g, name=name)


@pytest.fixture
def importer(monkeypatch):
    """A stand-in core/importer: records its calls, answers with `answer(**call)` (a result or an
    exception to raise), and waits for `gate` when one is set."""
    mod = types.ModuleType(IMPORTER)
    mod.ImportRefused, mod.ImportResult = ImportRefused, ImportResult
    mod.calls, mod.gate = [], None
    mod.threads = []

    def answer(source, args=None, input_shape=None, weights_to=None, timeout=60.0):
        project = imported_project(input_shape or (3, 224, 224))
        if weights_to:
            Path(weights_to).write_bytes(b"weights")
            project.training["init_weights"] = weights_to
        return ImportResult(project, Path(weights_to) if weights_to else None, ["fc: kept as Linear"])

    mod.answer = answer

    def import_model(source, *, args=None, input_shape=None, weights_to=None, timeout=60.0, **more):
        mod.threads.append(threading.current_thread())
        mod.calls.append({"source": source, "args": args, "input_shape": input_shape, "weights_to": weights_to,
                          "timeout": timeout, **more})
        if mod.gate is not None:
            mod.gate.wait(30)
        out = mod.answer(source, args, input_shape, weights_to, timeout)
        if isinstance(out, BaseException):
            raise out
        return out

    mod.import_model = import_model
    monkeypatch.setitem(sys.modules, IMPORTER, mod)
    yield mod
    if mod.gate is not None:
        mod.gate.set()


@pytest.fixture
def dialog(qtbot, tmp_path):
    d = ImportDialog(folder=tmp_path)
    qtbot.addWidget(d)
    d.show()
    yield d
    if d.thread is not None:
        d.thread.join(10)


def finish(qtbot, d: ImportDialog) -> None:
    qtbot.waitUntil(lambda: not d.is_running(), timeout=10_000)


def choose_torchvision(d: ImportDialog, name="resnet18", args="", shape="3x32x32") -> None:
    d.tv_radio.setChecked(True)
    d.tv_combo.setCurrentText(name)
    d.args_edit.setText(args)
    d.input_edit.setText(shape)


def test_success_opens_the_import_as_a_new_untitled_project_fitted_in_view(make_window, importer, qtbot, tmp_path):
    w = make_window("mnist_cnn")
    before = w.document.project
    w.document.set_training({**before.training, "lr": 0.5})  # unsaved changes
    w.answers["save_changes"] = "cancel"
    asked = []
    w.ask_import = lambda: asked.append(1)
    assert not w.import_module() and not asked and w.document.project is before  # as Open: cancel keeps it

    def run_dialog():
        d = ImportDialog(w, folder=tmp_path)
        qtbot.addWidget(d)
        choose_torchvision(d, "resnet18", '{"num_classes": 10}', "3×32×32")
        d.carry.setChecked(True)
        assert d.weights_edit.text() == str(tmp_path / "resnet18-weights.pt")
        assert d.start()
        assert d.busy.isVisibleTo(d) and not d.import_button.isEnabled() and not d.args_edit.isEnabled()
        finish(qtbot, d)
        d.thread.join(10)
        assert d.result() == ImportDialog.Accepted
        return d.imported

    w.answers["save_changes"] = "discard"
    w.ask_import = run_dialog
    assert w.import_module()
    assert w.asked.count("save_changes") == 2
    cancel = importer.calls[0].pop("cancel")
    assert isinstance(cancel, threading.Event) and not cancel.is_set()
    assert importer.calls == [{"source": "torchvision:resnet18", "args": {"num_classes": 10},
                               "input_shape": (3, 32, 32), "weights_to": str(tmp_path / "resnet18-weights.pt"),
                               "timeout": 60.0}]
    assert importer.threads[0] is not threading.main_thread()  # off the GUI thread
    doc = w.document
    assert doc.project is not before and doc.path is None and not doc.is_modified()
    assert [n.type for n in doc.graph] == ["Input", "Conv2d", "ReLU", "Flatten", "Linear"]
    # As New does: ready to train on the built-in data at the model's input size, from the weights.
    assert doc.project.training == {"init_weights": str(tmp_path / "resnet18-weights.pt"), "dataset": "shapes",
                                    "shapes_channels": 3, "shapes_size": 32}
    assert w.windowTitle().startswith("ResNet")
    assert doc.project.description == "Import notes: fc: kept as Linear."
    assert "Import notes: fc: kept as Linear." in w.inspector.empty.text()  # shown while nothing is selected
    visible = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
    assert visible.contains(QRectF(w.scene.blocks_rect()))
    assert "training starts from" in w.statusBar().currentMessage()

    # The training panel shows the weights it will start from; saving next to them keeps them relative.
    assert w.training_panel.config().init_weights == str(tmp_path / "resnet18-weights.pt")
    w.document.save(tmp_path / "resnet.json")
    from cnnbuilder.core.project import load_project

    assert load_project(tmp_path / "resnet.json").training["init_weights"] == "resnet18-weights.pt"
    assert w.training_panel.config().init_weights == "resnet18-weights.pt"


def test_a_refusal_is_shown_in_the_dialog_and_changes_nothing(window, importer, qtbot, dialog):
    before, graph_rev = window.document.project, window.document.graph.revision
    importer.answer = lambda *a: ImportRefused("net.py, line 14: `if x.sum() > 0` decides on a tensor's value: "
                                               "torch.fx cannot trace control flow that depends on the input")
    choose_torchvision(dialog)
    assert dialog.start()
    finish(qtbot, dialog)
    assert dialog.isVisible() and dialog.imported is None and dialog.result() != ImportDialog.Accepted
    assert dialog.message.text().startswith("net.py, line 14: `if x.sum() > 0` decides on a tensor's value")
    assert dialog.message.textInteractionFlags() & Qt.TextSelectableByMouse
    assert dialog.import_button.isEnabled() and not dialog.busy.isVisibleTo(dialog)
    assert window.document.project is before and window.document.graph.revision == graph_rev
    assert not window.document.is_modified()

    # Anything else the importer raises is one line, never a traceback; trying again works.
    importer.answer = lambda *a: RuntimeError("subprocess ended\nTraceback (most recent call last): ...")
    dialog.thread.join(10)
    assert dialog.start()
    finish(qtbot, dialog)
    assert dialog.message.text() == "The import failed: RuntimeError: subprocess ended"

    # The importer words its refusals for the command line; the dialog names its own fields.
    importer.answer = lambda *a: ImportRefused("Net needs arguments: width; pass them with --args "
                                               "'{\"width\": ...}'")
    dialog.thread.join(10)
    assert dialog.start()
    finish(qtbot, dialog)
    assert dialog.message.text() == ("Net needs arguments: width; pass them with Constructor arguments "
                                     "'{\"width\": ...}'")


def test_without_an_importer_the_dialog_says_so(dialog, qtbot, monkeypatch):
    monkeypatch.setitem(sys.modules, IMPORTER, None)  # `import` raises ImportError naming the module
    choose_torchvision(dialog)
    assert dialog.start()
    finish(qtbot, dialog)
    assert dialog.message.text() == "Importing PyTorch modules is not available in this build of cnnbuilder."


@pytest.mark.parametrize("args,shape,message", [
    ("{num_classes: 10}", "3x32x32", "Constructor arguments: not valid JSON (Expecting property name enclosed in "
                                     "double quotes at line 1, column 2); write them like {\"num_classes\": 10}"),
    ("[10]", "3x32x32", "Constructor arguments: expected a JSON object of name: value pairs like "
                        "{\"num_classes\": 10}, got a list"),
    ('{"num classes": 10}', "3x32x32", "Constructor arguments: 'num classes' is not a Python argument name"),
    ("", "3x32", None),
    ("", "0x32x32", "Input shape: must be at least 1 (got 0)"),
    ("", "3x32x32x2", "Input shape: at most 3 dimensions (C×H×W) are supported"),
    ("", "three by 32", "Input shape: expected sizes like 3x224x224 (channels × height × width), got 'three by 32'"),
    ("", "3x-32x32", "Input shape: expected sizes like 3x224x224 (channels × height × width), got '3x-32x32'"),
])
def test_bad_arguments_and_shapes_are_refused_in_the_dialog(dialog, importer, qtbot, args, shape, message):
    choose_torchvision(dialog, args=args, shape=shape)
    if message is None:  # a 2-D input (C×L) is a shape the Input block takes
        assert dialog.start()
        finish(qtbot, dialog)
        assert importer.calls[0]["input_shape"] == (3, 32)
        return
    assert not dialog.start()
    assert dialog.message.text() == message and not importer.calls and not dialog.is_running()


def test_file_source_needs_a_file_and_a_class_and_the_weights_a_folder(dialog, importer, tmp_path):
    dialog.file_radio.setChecked(True)
    dialog.file_edit.setText("")
    assert not dialog.start() and dialog.message.text() == "Choose the Python file that defines the model"
    dialog.file_edit.setText(str(tmp_path / "none.py"))
    assert not dialog.start() and dialog.message.text() == f"{tmp_path / 'none.py'}: no such file"
    src = tmp_path / "net.py"
    src.write_text("x = 1\n")
    dialog.file_edit.setText(str(src))
    dialog.scan_file()
    assert dialog.class_hint.text() == "No nn.Module subclass found in net.py: type the class name"
    dialog.class_combo.setEditText("")
    assert not dialog.start() and dialog.message.text().startswith("Choose the class to import")
    dialog.class_combo.setEditText("My Net")
    assert not dialog.start() and dialog.message.text() == "Class: 'My Net' is not a Python class name"
    dialog.class_combo.setEditText("Net")
    dialog.carry.setChecked(True)
    dialog.weights_edit.setText(str(tmp_path / "no" / "w.pt"))
    assert not dialog.start()
    assert dialog.message.text() == f"Weights file: the folder {tmp_path / 'no'} does not exist"
    assert not importer.calls


def test_cancel_stops_waiting_and_changes_nothing(window, importer, qtbot, dialog):
    importer.gate = threading.Event()
    choose_torchvision(dialog)
    assert dialog.start()
    assert dialog.cancel_button.text() == "Stop"
    dialog.cancel_button.click()
    assert not dialog.is_running() and dialog.isVisible() and dialog.import_button.isEnabled()
    qtbot.waitUntil(lambda: bool(importer.calls))
    assert importer.calls[0]["cancel"].is_set()  # the importer kills its process (tests/core: test_cancel_...)
    assert dialog.message.text() == "Import cancelled: nothing was changed."
    importer.gate.set()  # the abandoned import ends later: its answer is dropped
    dialog.thread.join(10)
    qtbot.wait(50)
    assert dialog.imported is None and dialog.isVisible() and dialog.result() != ImportDialog.Accepted
    assert dialog.cancel_button.text() == "Cancel"
    dialog.cancel_button.click()  # a second Cancel closes
    assert not dialog.isVisible() and dialog.result() == ImportDialog.Rejected


def test_the_class_picker_lists_module_classes_without_running_the_file(dialog, importer, qtbot, tmp_path):
    marker = tmp_path / "ran"
    src = tmp_path / "models.py"
    src.write_text(f"""\
import torch.nn as nn
from torch.nn import Sequential
from torch.utils.data import Dataset

open({str(marker)!r}, "w")  # would run on import
raise SystemExit(3)


class Block(nn.Module):
    def __init__(self, channels, kernel_size=3):
        super().__init__()


class Net(Block):
    def __init__(self, num_classes=10):
        super().__init__(16)


class Stack(Sequential):
    pass


class Data(Dataset):
    pass


class Helper:
    pass
""")
    dialog.file_radio.setChecked(True)
    dialog.file_edit.setText(str(src))
    dialog.scan_file()
    assert [dialog.class_combo.itemText(i) for i in range(dialog.class_combo.count())] == ["Block", "Net", "Stack"]
    assert dialog.class_combo.currentText() == "Stack"  # the last one: usually the whole model
    dialog.class_combo.setCurrentText("Block")
    assert dialog.class_hint.text() == "Block(channels, kernel_size=3), line 9 — needs constructor arguments: channels"
    dialog.class_combo.setCurrentText("Net")
    assert dialog.class_hint.text() == "Net(num_classes=10), line 14"
    assert dialog.weights_edit.text().endswith("net-weights.pt")
    assert not marker.exists()
    dialog.args_edit.setText('{"num_classes": 3}')
    assert dialog.start()
    finish(qtbot, dialog)
    assert importer.calls[0]["source"] == f"{src}:Net" and importer.calls[0]["args"] == {"num_classes": 3}

    bad = tmp_path / "broken.py"
    bad.write_text("import torch\n\nclass Net(torch.nn.Module:\n    pass\n")
    dialog.file_edit.setText(str(bad))
    dialog.scan_file()
    assert dialog.class_combo.count() == 0
    assert dialog.class_hint.text().startswith(f"{bad}, line 3: syntax error: ")


def test_choices_are_remembered_for_the_next_import(qtbot, importer, tmp_path):
    d = ImportDialog(folder=tmp_path)
    qtbot.addWidget(d)
    choose_torchvision(d, "vgg16_bn", '{"num_classes": 100}', "3x64x64")
    d.carry.setChecked(True)
    assert d.start()
    finish(qtbot, d)
    again = ImportDialog(folder=tmp_path)
    qtbot.addWidget(again)
    assert again.tv_radio.isChecked() and again.tv_combo.currentText() == "vgg16_bn"
    assert again.args_edit.text() == '{"num_classes": 100}' and again.input_edit.text() == "3x64x64"
    assert again.carry.isChecked()
    # The default weights file never replaces one that exists (the first import wrote it).
    assert again.weights_edit.text() == str(tmp_path / "vgg16_bn-weights-2.pt")


def test_the_editor_process_stays_without_torch():
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "import cnnbuilder.qt.main_window\n"
        "from cnnbuilder.qt.import_dialog import ImportDialog\n"
        "d = ImportDialog()\n"
        "try:\n"
        "    import cnnbuilder.core.importer\n"
        "except ImportError:\n"
        "    pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"



def test_the_menu_entry_runs_the_modal_dialog(make_window, importer, qtbot, tmp_path):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    w = make_window("mnist_cnn")
    assert w.act_import in w.import_menu.actions() and w.act_import.text() == "&PyTorch Module…"
    seen = []

    def drive():
        d = QApplication.activeModalWidget()
        seen.append(d)
        if isinstance(d, ImportDialog):
            choose_torchvision(d, "alexnet", "", "3x64x64")
            d.carry.setChecked(False)
            d.start()
        QTimer.singleShot(10_000, d, d.reject)  # never hang the suite (cancelled when d goes)

    QTimer.singleShot(0, drive)
    w.act_import.trigger()
    assert isinstance(seen[0], ImportDialog)
    assert importer.calls[0]["source"] == "torchvision:alexnet" and importer.calls[0]["weights_to"] is None
    assert w.document.project.name == "ResNet" and w.document.graph.node(
        w.document.analysis.input_id).params["shape"] == (3, 64, 64)
    assert "init_weights" not in w.document.project.training
    seen[0].thread.join(10)


def test_a_state_dict_on_disk_is_passed_on_only_when_given(dialog, importer, qtbot, tmp_path):
    choose_torchvision(dialog)
    dialog.state_edit.setText(str(tmp_path / "none.pth"))
    assert not dialog.start()
    assert dialog.message.text() == f"Weights to load: {tmp_path / 'none.pth'}: no such file" and not importer.calls
    (tmp_path / "resnet18.pth").write_bytes(b"x")
    dialog.ask_state_dict = lambda: str(tmp_path / "resnet18.pth")
    dialog.browse_state.click()
    assert dialog.start()
    finish(qtbot, dialog)
    assert importer.calls[0]["state_dict"] == str(tmp_path / "resnet18.pth")


TINY_MODEL = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).relu().flatten(1))
"""


def test_a_real_import_with_weights_keeps_torch_out_of_the_editor(tmp_path):
    """With the real core/importer (skipped where it is not built in): the dialog imports a module
    and carries its weights over while the editor's process never loads torch."""
    import importlib.util

    if importlib.util.find_spec(IMPORTER) is None:
        pytest.skip("core/importer is not part of this build")
    (tmp_path / "tiny.py").write_text(TINY_MODEL)
    code = f"""
import sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from cnnbuilder.qt.import_dialog import ImportDialog
d = ImportDialog(folder={str(tmp_path)!r})
d.file_radio.setChecked(True)
d.file_edit.setText({str(tmp_path / "tiny.py")!r})
d.scan_file()
d.input_edit.setText("1x8x8")
d.carry.setChecked(True)
assert d.start(), d.message.text()
while d.is_running():
    app.processEvents()
    d.thread.join(0.05)
app.processEvents()
assert d.imported is not None, d.message.text()
print(len(d.imported.project.graph), d.imported.weights is not None, "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr[-2000:]
    blocks, weights, torch_loaded = out.stdout.split()
    assert int(blocks) >= 4 and weights == "True"
    assert torch_loaded == "False", "the import loaded torch in the editor's process"


def test_an_existing_weights_file_is_replaced_only_when_the_user_agrees(dialog, importer, qtbot, tmp_path):
    choose_torchvision(dialog)
    dialog.carry.setChecked(True)
    old = tmp_path / "mine.pt"
    old.write_bytes(b"keep me")
    dialog.weights_edit.setText(str(old))
    dialog.weights_edit.textEdited.emit(str(old))  # typed
    asked = []
    dialog.ask_overwrite = lambda path: asked.append(path) or False
    assert not dialog.start() and asked == [old] and not importer.calls and old.read_bytes() == b"keep me"
    dialog.ask_weights_path = lambda: str(old)  # the save dialog asks itself
    dialog.browse_weights.click()
    assert dialog.start() and asked == [old]
    finish(qtbot, dialog)
    assert importer.calls[0]["weights_to"] == str(old)
