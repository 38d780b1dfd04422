"""Saving a checkpoint or exporting weights to a target that fails (a full disk, a folder in the way,
a path under a file, no permission) is one line naming the file, never torch's RuntimeError; the
old file survives whole, no temporary file is left, and the run's state stays to save elsewhere.

A full disk is simulated under the real atomic write: the file object torch.save writes to raises
ENOSPC part-way (as the OS does), or torch's zip writer raises the RuntimeError the testers saw.
Tests run as root, for whom chmod blocks nothing, so "no permission" is simulated the same way."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from cnnbuilder.cli import main
from cnnbuilder.core.project import Project, save_project
from cnnbuilder.core.training.checkpoint import SaveError, load_checkpoint
from cnnbuilder.core.training.engine import TrainControl, Trainer
from cnnbuilder.core.training.events import BatchMetrics, CheckpointFailed, CheckpointSaved, Finished

from .tiny_training import TINY_CFG, failing_disk, tiny_graph

TORCH_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    trainer = Trainer(tiny_graph(), TINY_CFG.replace(epochs=1))
    assert isinstance(list(trainer.run())[-1], Finished)
    return trainer


def one_line_naming(exc_info, path) -> str:
    text = str(exc_info.value)
    assert "\n" not in text and str(path) in text, text
    return text


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("exc,reason", [
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
    (RuntimeError(TORCH_FULL), "the write failed (is the disk full?)"),
    (PermissionError(errno.EACCES, "Permission denied"), "no permission to write there"),
])
def test_checkpoint_to_a_failing_disk_is_one_line_and_keeps_the_old_file(trained, tmp_path, monkeypatch, exc, reason):
    target = tmp_path / "run.ckpt"
    trained.save_checkpoint(target)
    before = target.read_bytes()
    failing_disk(monkeypatch, exc)
    with pytest.raises(SaveError) as info:
        trained.save_checkpoint(target)
    assert one_line_naming(info, target) == f"cannot write the checkpoint {target}: {reason}"
    assert target.read_bytes() == before and no_temp_files(tmp_path)
    monkeypatch.undo()
    trained.save_checkpoint(tmp_path / "elsewhere.ckpt")  # nothing was lost: it saves once there is room
    assert load_checkpoint(tmp_path / "elsewhere.ckpt")["step"] == trained.progress.step


def test_checkpoint_targets_that_cannot_be_files(trained, tmp_path):
    (tmp_path / "afile").write_text("x")
    for target, reason in ((tmp_path, "it is a folder"),
                           (tmp_path / "afile" / "x.ckpt", "part of the path is a file, not a folder"),
                           (tmp_path / "afile" / "deeper" / "x.ckpt", "part of the path is a file, not a folder")):
        with pytest.raises(SaveError) as info:
            trained.save_checkpoint(target)
        assert one_line_naming(info, target).endswith(reason)


@pytest.mark.parametrize("failing", [0, 1, 2])  # model.py, model.pt, model.safetensors
def test_export_to_a_full_disk_names_the_file_that_failed(trained, tmp_path, monkeypatch, failing):
    out = tmp_path / "export"
    failing_disk(monkeypatch, OSError(errno.ENOSPC, "No space left on device"), room=100, after=failing)
    with pytest.raises(SaveError) as info:
        trained.export_weights(out)
    name = ("model.py", "model.pt", "model.safetensors")[failing]
    assert one_line_naming(info, out / name).endswith(f"{out / name}: the disk is full")
    assert not (out / name).exists() and no_temp_files(out)


def test_safetensors_on_a_full_disk_is_not_silent(trained, tmp_path, monkeypatch):
    """safetensors' own save_file reports nothing when /dev/full refuses its bytes; the export writes
    them through the checked atomic write instead."""
    calls = failing_disk(monkeypatch, OSError(errno.ENOSPC, "No space left on device"), room=100, after=2)
    with pytest.raises(SaveError, match="model.safetensors: the disk is full"):
        trained.export_weights(tmp_path / "out")
    assert [p.name for p in calls] == ["model.py", "model.pt", "model.safetensors"]


def test_export_targets_that_cannot_be_folders(trained, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SaveError) as info:
        trained.export_weights(tmp_path / "afile")
    assert one_line_naming(info, tmp_path / "afile").startswith("cannot create the folder")
    with pytest.raises(SaveError):
        trained.export_weights(tmp_path / "afile" / "sub")


def test_a_failed_save_during_a_run_is_an_event_and_the_run_goes_on(tmp_path):
    (tmp_path / "afile").write_text("x")
    control = TrainControl()
    trainer = Trainer(tiny_graph(), TINY_CFG, control=control)
    events = []
    for ev in trainer.run():
        events.append(ev)
        if isinstance(ev, BatchMetrics) and ev.step == 2:
            control.request_checkpoint(tmp_path / "afile" / "mid.ckpt")
            control.request_checkpoint(tmp_path / "mid.ckpt")
    failed = [e for e in events if isinstance(e, CheckpointFailed)]
    assert len(failed) == 1 and failed[0].message == (f"cannot write the checkpoint {tmp_path / 'afile' / 'mid.ckpt'}"
                                                      ": part of the path is a file, not a folder")
    assert any(isinstance(e, CheckpointSaved) for e in events)  # the next request still works
    assert isinstance(events[-1], Finished)


def test_the_command_line_reports_a_failed_save_in_one_line(tmp_path, monkeypatch, capsys):
    project = tmp_path / "proj.json"
    save_project(Project(graph=tiny_graph(), name="tiny", training=TINY_CFG.replace(epochs=1).to_dict()), project)
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "run.ckpt"
    assert main(["train", str(project), "--quiet", "--checkpoint", str(target)]) == 2
    out, err = capsys.readouterr()
    assert "test accuracy" in out  # the run itself finished
    assert err == f"cnnbuilder train: cannot write the checkpoint {target}: part of the path is a file, not a folder\n"

    failing_disk(monkeypatch, RuntimeError(TORCH_FULL))
    assert main(["train", str(project), "--quiet", "--checkpoint", str(tmp_path / "run.ckpt"),
                 "--export-weights", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"cnnbuilder train: cannot write the checkpoint {tmp_path / 'run.ckpt'}: the write failed "
                   "(is the disk full?)",
                   f"cnnbuilder train: cannot write the weights {tmp_path / 'w' / 'model.pt'}: the write "
                   "failed (is the disk full?)"]  # model.py fitted in the 1,000 bytes left
    assert not os.path.exists(tmp_path / "run.ckpt")
