"""The Training panel when saving fails or a checkpoint is damaged: the reason shows in the panel in
one line naming the file, the app stays usable and the trained model is kept to save elsewhere.
A full disk is simulated under the real atomic write (see tests/core/test_training_robust_save.py)
in the training process, where the files are written (tests/qt/child_hooks.py); tests run as
root, so a folder in the way stands in for "no permission"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnbuilder.core.training.checkpoint as ckpt
from cnnbuilder.core.project import Project
from cnnbuilder.core.training.checkpoint import CHECKSUM, digest
from cnnbuilder.qt.document import Document
from cnnbuilder.qt.training import TrainingPanel

from ..core.tiny_training import TINY_CFG, tiny_graph

TINY = {**TINY_CFG.to_dict(), "log_interval": 0.05}
LONG = {**TINY, "epochs": 500}


@pytest.fixture
def make_panel(qtbot):
    panels = []

    def make(training: dict | None = None) -> TrainingPanel:
        panel = TrainingPanel(Document(Project(graph=tiny_graph(), name="tiny", training=dict(training or TINY))))
        qtbot.addWidget(panel)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        assert panel.shutdown(10_000)


def trained(qtbot, make_panel, training=None) -> TrainingPanel:
    panel = make_panel(training)
    assert panel.start()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=60_000)
    assert panel.progress.format().startswith("Finished"), panel.error_label.text()
    return panel


def shown_error(qtbot, panel, needle: str) -> str:
    qtbot.waitUntil(lambda: needle in panel.error_label.text(), timeout=30_000)
    assert not panel.error_label.isHidden()
    return panel.error_label.text()


def test_save_and_export_to_failing_targets_show_the_file_and_keep_the_model(qtbot, make_panel, tmp_path,
                                                                               in_child):
    panel = trained(qtbot, make_panel)
    (tmp_path / "afile").write_text("x")
    bad = tmp_path / "afile" / "run.ckpt"
    panel.ask_checkpoint_save_path = lambda: str(bad)
    panel.save_button.click()
    assert shown_error(qtbot, panel, str(bad)) == \
        f"cannot write the checkpoint {bad}: part of the path is a file, not a folder"

    panel.ask_checkpoint_save_path = lambda: str(tmp_path)  # a folder as the target
    panel.save_button.click()
    shown_error(qtbot, panel, f"cannot write the checkpoint {tmp_path}: it is a folder")

    in_child(panel.worker, "tests.qt.child_hooks:full_disk", 100, 1)
    panel.ask_export_dir = lambda: str(tmp_path / "export")
    panel.export_button.click()
    assert shown_error(qtbot, panel, "model.pt") == \
        f"cannot write the weights {tmp_path / 'export' / 'model.pt'}: the disk is full"
    assert in_child(panel.worker, "tests.qt.child_hooks:undo") == 1

    assert panel.save_button.isEnabled() and panel.export_button.isEnabled() and panel.train_button.isEnabled()
    good = tmp_path / "run.ckpt"
    panel.ask_checkpoint_save_path = lambda: str(good)
    panel.save_button.click()
    qtbot.waitUntil(lambda: f"saved checkpoint {good}" in panel.log.toPlainText(), timeout=30_000)
    assert ckpt.load_checkpoint(good)["finished"] is True  # the trained state was never lost
    panel.export_button.click()
    qtbot.waitUntil(lambda: "exported" in panel.log.toPlainText(), timeout=30_000)
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["model.pt", "model.py", "model.safetensors"]


def test_a_failed_save_during_a_run_shows_and_the_run_goes_on(qtbot, make_panel, tmp_path):
    panel = make_panel(LONG)
    assert panel.start()
    qtbot.waitUntil(lambda: panel.save_button.isEnabled(), timeout=60_000)  # the model exists
    (tmp_path / "afile").write_text("x")
    bad = tmp_path / "afile" / "mid.ckpt"
    panel.ask_checkpoint_save_path = lambda: str(bad)
    panel.save_button.click()
    shown_error(qtbot, panel, str(bad))
    assert panel.is_running() and panel.stop_button.isEnabled()
    panel.ask_checkpoint_save_path = lambda: str(tmp_path / "mid.ckpt")
    panel.save_button.click()
    qtbot.waitUntil(lambda: "saved checkpoint" in panel.log.toPlainText(), timeout=30_000)
    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=30_000)
    assert ckpt.load_checkpoint(tmp_path / "mid.ckpt")["step"] > 0


def test_a_damaged_checkpoint_is_named_and_the_last_model_stays_saveable(qtbot, make_panel, tmp_path):
    panel = trained(qtbot, make_panel)
    good = tmp_path / "good.ckpt"
    panel.ask_checkpoint_save_path = lambda: str(good)
    panel.save_button.click()
    qtbot.waitUntil(lambda: "saved checkpoint" in panel.log.toPlainText(), timeout=30_000)
    data = torch.load(good, weights_only=True)
    data["config"] = 7
    data[CHECKSUM] = digest(data)
    crafted = tmp_path / "crafted.ckpt"
    torch.save(data, crafted)
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 2] ^= 0x04
    flipped = tmp_path / "flipped.ckpt"
    flipped.write_bytes(bytes(raw))
    for bad in (crafted, flipped):
        panel.ask_checkpoint_open_path = lambda bad=bad: str(bad)
        panel.resume_button.click()
        qtbot.waitUntil(lambda: not panel.is_running(), timeout=60_000)
        assert panel.error_label.text().startswith(f"checkpoint {bad} is damaged: ")
        assert "\n" not in panel.error_label.text()
    # Nothing resumed, and the first run's model is still the one Save writes.
    assert panel.save_button.isEnabled() and panel.export_button.isEnabled()
    again = tmp_path / "again.ckpt"
    panel.ask_checkpoint_save_path = lambda: str(again)
    panel.save_button.click()
    qtbot.waitUntil(lambda: f"saved checkpoint {again}" in panel.log.toPlainText(), timeout=30_000)
    first, second = ckpt.load_checkpoint(good), ckpt.load_checkpoint(again)
    assert second["step"] == first["step"] and torch.equal(second["model"]["layers.0.weight"],
                                                           first["model"]["layers.0.weight"])


def test_empty_classes_show_in_the_data_note(qtbot, make_panel, tmp_path):
    root = tmp_path / "pets"
    for c in ("cats", "dogs"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16), 50 * i, np.uint8)).save(root / c / f"{i}.png")
    (root / "owls").mkdir()
    Path(root / "cats" / "loop").symlink_to(root)
    panel = make_panel({**TINY, "dataset": "folder", "data_root": str(root)})
    text = panel.fit_frame.label.text()
    assert "no images for class(es) owls" in text and "not followed" in text and panel.fit_frame.isVisibleTo(panel)
