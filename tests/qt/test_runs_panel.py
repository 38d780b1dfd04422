"""Runs belong to their project (pytest-qt, offscreen): File ▸ New shows none of the old runs and
cannot export them; reopening brings the runs back with curves and evaluation; Export weights
writes the run's own code and weights (they load and match) even after the canvas was edited,
and says so; renames and deletes persist; an unsaved project's runs move with its first save;
damaged run files are skipped with a message."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import torch

from cnnbuilder.core import runs
from cnnbuilder.core.commands import SetParam
from cnnbuilder.core.project import load_project

from .helpers import EXAMPLES

TINY = {"dataset": "shapes", "shapes_train": 300, "shapes_test": 60, "batch_size": 32, "epochs": 1, "lr": 0.003}


def train(qtbot, w) -> runs.RunRecord:
    panel = w.training_panel
    before = len(panel.runs_view.records)
    assert w.train()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=90_000)
    assert panel.progress.format().startswith("Finished"), panel.error_label.text()
    assert len(panel.runs_view.records) == before + 1
    return panel.runs_view.current()


def template(name: str):
    project = load_project(EXAMPLES / f"{name}.json")
    project.path = None
    return project


def import_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"exported_{path.parent.name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_runs_stay_with_their_project_and_export_their_own_code(qtbot, make_window, tmp_path):
    w = make_window("mnist_cnn")
    panel = w.training_panel
    w.document.set_training(TINY)
    project_file = tmp_path / "digits.json"
    w.answers["save_path"] = str(project_file)
    assert w.save_as()
    rec = train(qtbot, w)
    folder = tmp_path / "digits.runs"
    assert (folder / rec.id / "run.json").is_file() and (folder / rec.id / "weights.safetensors").is_file()
    assert rec.name in panel.evaluation.run_label.text()
    assert panel.export_button.isEnabled()

    # File ▸ New: none of the old project's runs, results or exports remain.
    w.answers["template"] = template("lenet5")
    assert w.new_project()
    assert panel.runs_view.records == {} and panel.plots.runs == {} and panel.plots.run_list.count() == 0
    assert not panel.export_button.isEnabled() and not panel.save_button.isEnabled()
    assert not panel.progress.format().startswith("Finished")
    assert "No run" in panel.evaluation.run_label.text() and "Test accuracy" not in panel.evaluation.summary.text()
    panel._export()  # even called directly, there is nothing of another project to write
    assert "No run to export" in panel.error_label.text()

    # Reopen: the run comes back, curves and evaluation included.
    assert w.open_path(project_file)
    assert list(panel.runs_view.records) == [rec.id]
    back = panel.runs_view.current()
    assert back == rec
    x, _ = panel.plots.runs[rec.id].curves["smooth"].getData()
    assert x is not None and len(x) == len(rec.history["step"])
    assert panel.evaluation.matrix.rowCount() == 10 and rec.name in panel.evaluation.run_label.text()
    assert f"{rec.test_acc:.2%}" in panel.evaluation.summary.text()
    assert not panel.run_note.isVisible() and panel.run_note.text() == ""

    # The feature maps use the run's weights and say so.
    panel.tabs.setCurrentWidget(panel.features)
    w.document.set_selection(["n2"])
    qtbot.waitUntil(lambda: panel.features.frames > 0, timeout=60_000)
    assert f"weights of {rec.name}" in panel.features.info.text() and rec.name in panel.features.source.text()

    # Edit the canvas after the run: the panel says so, and the export is still the run's own.
    conv = next(n for n in w.document.graph if n.type == "Conv2d")
    assert w.document.push(SetParam(conv.id, "out_channels", 8)) is None
    assert "edited after this run" in panel.run_note.text() and not panel.run_note.isHidden()
    out = tmp_path / "export"
    panel.ask_export_dir = lambda: str(out)
    panel.export_button.click()
    qtbot.waitUntil(lambda: "exported" in panel.log.toPlainText() or panel.error_label.isVisible(), timeout=30_000)
    code = (out / "model.py").read_text()
    assert code == rec.code and "out_channels=8" not in code.replace(" ", "")
    mod = import_module(out / "model.py")
    want = runs.build_model(runs.RunStore(folder), rec)
    x = torch.randn(2, 1, 28, 28)
    from safetensors.torch import load_file

    for state in (torch.load(out / "model.pt", weights_only=True), load_file(out / "model.safetensors")):
        net = mod.Net()
        net.load_state_dict(state)  # strict: every tensor of the code, and only those
        assert torch.equal(net.eval()(x), want(x))
    w.document.undo_stack.undo()
    assert panel.run_note.isHidden()


def test_rename_delete_sort_and_damaged_runs_persist_across_reopen(qtbot, make_window, tmp_path):
    w = make_window("mnist_cnn")
    panel = w.training_panel
    w.document.set_training(TINY)
    project_file = tmp_path / "p.json"
    w.answers["save_path"] = str(project_file)
    assert w.save_as()
    rec = train(qtbot, w)
    view = panel.runs_view
    store = runs.RunStore(tmp_path / "p.runs")

    # Two more runs on disk (copies with other results) and one damaged record.
    data = json.loads((store.run_dir(rec.id) / "run.json").read_text())
    for rid, acc in (("20200101-000000-aaaaaa", 0.99), ("20200101-000001-bbbbbb", 0.05)):
        shutil.copytree(store.run_dir(rec.id), store.run_dir(rid))
        (store.run_dir(rid) / "run.json").write_text(json.dumps({**data, "id": rid, "name": f"copy {acc}",
                                                                  "test_acc": acc}))
    shutil.copytree(store.run_dir(rec.id), store.run_dir("20200101-000002-cccccc"))
    (store.run_dir("20200101-000002-cccccc") / "run.json").write_text('{"format": "cnnbuilder-run", "version": 1')
    assert w.open_path(project_file)
    assert len(view.records) == 3
    assert "skipped" in panel.error_label.text() and "could not be read" in panel.error_label.text()
    assert "not valid JSON" in panel.log.toPlainText()

    # The table sorts by a column's value (test accuracy), not its text.
    col = 5
    view.table.sortItems(col)
    shown = [view.table.item(r, 0).text() for r in range(view.table.rowCount())]
    assert shown[0] == "copy 0.05" and shown[-1] == "copy 0.99"

    # Rename and delete (confirmed by a scripted dialog) persist.
    view.select(rec.id)
    view.ask_run_name = lambda current: "the good one"
    assert view.rename_current()
    assert panel.plots.runs[rec.id].label == "the good one" and "the good one" in panel.evaluation.run_label.text()
    view.select("20200101-000000-aaaaaa")
    view.ask_delete_run = lambda name: False
    assert not view.delete_current() and store.run_dir("20200101-000000-aaaaaa").exists()
    asked = []
    view.ask_delete_run = lambda name: asked.append(name) or True
    assert view.delete_current() and asked == ["copy 0.99"]
    assert "20200101-000000-aaaaaa" not in panel.plots.runs
    w.answers["template"] = template("lenet5")
    assert w.new_project() and w.open_path(project_file)
    assert {r.name for r in view.records.values()} == {"the good one", "copy 0.05"}


def test_an_unsaved_projects_runs_move_with_its_first_save(qtbot, make_window, tmp_path):
    w = make_window("mnist_cnn")  # from a template: no file yet
    panel = w.training_panel
    assert w.document.path is None
    w.document.set_training(TINY)
    rec = train(qtbot, w)
    scratch = panel._runs_folder
    assert runs.is_scratch(scratch) and (scratch / rec.id / "run.json").is_file()
    w.answers["save_path"] = str(tmp_path / "first.json")
    assert w.save_as()
    assert not scratch.exists()
    assert (tmp_path / "first.runs" / rec.id / "weights.safetensors").is_file()
    assert panel.export_button.isEnabled() and list(panel.runs_view.records) == [rec.id]
    # Save As again: the new file gets a copy, the first file keeps its own.
    w.answers["save_path"] = str(tmp_path / "second.json")
    assert w.save_as()
    for name in ("first", "second"):
        assert [r.id for r in runs.RunStore(tmp_path / f"{name}.runs").load()[0]] == [rec.id]
    w.answers["template"] = template("lenet5")
    assert w.new_project()
    assert w.open_path(tmp_path / "first.json") and list(panel.runs_view.records) == [rec.id]
