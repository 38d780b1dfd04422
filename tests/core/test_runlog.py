"""Run logs: metrics.csv always, TensorBoard event files on request, holding the run's own numbers
(read back with tensorboard's event reader); a missing tensorboard package is a message naming the
install command."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnbuilder.cli import main
from cnnbuilder.core.project import load_project, save_project
from cnnbuilder.core.training import runlog
from cnnbuilder.core.training.config import TrainConfig
from cnnbuilder.core.training.engine import Trainer
from cnnbuilder.core.training.events import Failed, Finished, Started

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
TINY = TrainConfig(shapes_train=200, shapes_test=40, val_split=0.2, batch_size=32, epochs=2, lr=0.003,
                   scheduler="step", gamma=0.5, log_interval=0.0)


def _graph():
    return load_project(EXAMPLES / "mnist_cnn.json").graph


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tensorboard_and_csv_hold_the_run_history(tmp_path):
    pytest.importorskip("tensorboard", reason="pip install 'cnnbuilder[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = Trainer(_graph(), TINY.replace(tensorboard=True), log_dir=tmp_path, run_name="tiny")
    events = list(trainer.run())
    done = events[-1]
    assert isinstance(done, Finished), done
    started = next(e for e in events if isinstance(e, Started))
    assert started.run_dir == str(tmp_path / "tiny") == str(trainer.run_dir)
    h = done.history

    rows = _csv(tmp_path / "tiny" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert [float(r[key]) for r in rows] == h[key]  # exact: written with repr
    assert [float(r["lr"]) for r in rows] == h["epoch_lr"] == [0.003, 0.0015]

    acc = EventAccumulator(str(tmp_path / "tiny"), size_guidance={"scalars": 0})
    acc.Reload()
    scalars = lambda tag: [(s.step, s.value) for s in acc.Scalars(tag)]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        got = scalars(f"epoch/{key}")
        want = h["epoch_lr" if key == "lr" else key]
        assert [s for s, _ in got] == [1, 2]
        assert [v for _, v in got] == pytest.approx(want, rel=1e-6)  # TensorBoard stores float32
    steps = scalars("step/loss")
    assert [s for s, _ in steps] == h["step"] and [v for _, v in steps] == pytest.approx(h["loss"], rel=1e-6)
    assert [s for s, _ in scalars("step/lr")] == h["lr_step"]
    assert scalars("test/acc") == [(done.step, pytest.approx(done.test_acc, rel=1e-6))]


def test_csv_without_tensorboard_and_a_resumed_run_keeps_its_epochs(tmp_path):
    first = Trainer(_graph(), TINY.replace(epochs=1), log_dir=tmp_path, run_name="r")
    assert isinstance(list(first.run())[-1], Finished)
    ckpt = first.save_checkpoint(tmp_path / "r.ckpt")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["metrics.csv"]  # no event files unless asked
    second = Trainer(_graph(), TINY, log_dir=tmp_path, run_name="r", resume=ckpt)
    done = list(second.run())[-1]
    assert isinstance(done, Finished) and second.run_dir == tmp_path / "r-2"  # a new folder, not overwritten
    rows = _csv(tmp_path / "r-2" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["train_loss"]) for r in rows] == done.history["train_loss"]
    assert rows[0]["seconds"] == "" and float(rows[1]["seconds"]) > 0  # the earlier epoch's time is unknown


def test_missing_tensorboard_names_the_install_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` now raises ImportError
    assert runlog.tensorboard_missing() == "TensorBoard logging needs the tensorboard package: " \
                                           "pip install 'cnnbuilder[tensorboard]'"
    assert runlog.tensorboard_missing(load=False) == runlog.tensorboard_missing()  # the GUI's quick look
    done = list(Trainer(_graph(), TINY.replace(tensorboard=True), log_dir=tmp_path).run())[-1]
    assert isinstance(done, Failed) and done.kind == "config" and "cnnbuilder[tensorboard]" in done.message
    project = load_project(EXAMPLES / "mnist_cnn.json")
    project.training = {"dataset": "shapes", "shapes_train": 100, "shapes_test": 20}
    save_project(project, tmp_path / "p.json")
    rc = main(["train", str(tmp_path / "p.json"), "--tensorboard", str(tmp_path / "tb")])
    err = capsys.readouterr().err
    assert rc == 1 and "pip install 'cnnbuilder[tensorboard]'" in err and "Traceback" not in err
    assert not (tmp_path / "tb").exists()


def test_cli_writes_the_csv_next_to_the_project_by_default(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CNNBUILDER_RUNS")
    project = load_project(EXAMPLES / "mnist_cnn.json")
    project.training = {"dataset": "shapes", "shapes_train": 100, "shapes_test": 20, "epochs": 1}
    save_project(project, tmp_path / "my model.json")
    assert main(["train", str(tmp_path / "my model.json"), "--run-name", "first"]) == 0
    out = capsys.readouterr().out
    assert f"run log: {tmp_path / 'runs' / 'first'}" in out
    assert len(_csv(tmp_path / "runs" / "first" / "metrics.csv")) == 1


def test_an_unwritable_log_folder_is_a_message(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["train", str(EXAMPLES / "mnist_cnn.json"), "--dataset", "shapes", "--log-dir", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot create the run folder" in err and "Traceback" not in err


@settings(max_examples=int(os.environ.get("CNNB_EXAMPLES", 60)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=80), when=st.floats(0, 4e9))
def test_run_names_are_one_safe_folder_name(tmp_path_factory, name, when):
    got = runlog.run_name(name, when)
    assert got and "/" not in got and "\\" not in got and not got.startswith(".") and len(got) < 100
    assert runlog.new_run_dir(tmp_path_factory.mktemp("r"), got).name == got  # a folder name the OS takes
