"""Fine-tuning in the Training panel: the "Start from" weights file is a setting of the form (chosen
with "…", kept relative to the project's folder), a run reports what it loaded in the log, and a
damaged file stops the run with a message naming it while the panel stays usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnbuilder.core.codegen import generate, instantiate
from cnnbuilder.core.project import load_project, save_project
from cnnbuilder.core.training import node_weights
from cnnbuilder.qt.document import Document
from cnnbuilder.qt.training import TrainingPanel

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
TINY = {"dataset": "shapes", "shapes_train": 300, "shapes_test": 60, "batch_size": 32, "epochs": 1, "lr": 0.003}


@pytest.fixture
def panel(qtbot, tmp_path):
    project = load_project(EXAMPLES / "mnist_cnn.json")
    project.training = dict(TINY)
    (tmp_path / "proj").mkdir()
    save_project(project, tmp_path / "proj" / "p.json")
    p = TrainingPanel(Document(load_project(tmp_path / "proj" / "p.json")))
    qtbot.addWidget(p)
    yield p
    assert p.shutdown(10_000)


def write_weights(graph, path: Path) -> int:
    gen = generate(graph)
    model = instantiate(gen)
    blocks = {nid: model.get_submodule(a).state_dict() for nid, a in gen.attr_of.items()
              if model.get_submodule(a).state_dict()}
    node_weights.save(path, blocks)
    return sum(len(sd) for sd in blocks.values())


def test_start_from_weights_chosen_in_the_form(qtbot, panel, tmp_path):
    doc = panel.document
    weights = tmp_path / "proj" / "weights" / "w.pt"
    weights.parent.mkdir()
    n = write_weights(doc.graph, weights)
    edit = panel._fields["init_weights"]
    assert panel.settings_form.boxes["Start from (fine-tuning)"].isAncestorOf(edit[0])
    assert edit[1]() == ""
    panel.ask_init_weights = lambda: str(weights)
    panel.settings_form.browse_requested.emit("init_weights")
    assert doc.project.training["init_weights"] == str(Path("weights") / "w.pt") and doc.is_modified()
    assert edit[1]() == str(Path("weights") / "w.pt")

    qtbot.waitUntil(panel.train_button.isEnabled, timeout=60_000)
    assert panel.start()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=120_000)
    assert panel.progress.format().startswith("Finished"), panel.error_label.text()
    assert f"note: started from w.pt: loaded {n} of {n} weight tensors" in panel.log.toPlainText()

    # A damaged file: the run stops before training, says which file and why; Train works again.
    weights.write_bytes(weights.read_bytes()[:100])
    assert panel.start()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=60_000)
    assert panel.progress.format() == "Failed"
    assert panel.error_label.text().startswith(str(weights) + ": not a weights file that can be read safely")
    assert "Traceback" not in panel.log.toPlainText()
    assert panel.train_button.isEnabled()
    # Cleared: random initialisation again.
    panel.settings_form.set_values(init_weights="")
    panel._settings_edited()
    assert doc.project.training["init_weights"] == ""
    assert panel.start()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=120_000)
    assert panel.progress.format().startswith("Finished"), panel.error_label.text()
