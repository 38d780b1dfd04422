"""`cnnbuilder train` under torchrun (gloo, 2 CPU processes): the same training as one process with
the whole batch, rank 0 alone speaks and writes, and a failure is each process's own clear message."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnbuilder.cli import main
from cnnbuilder.core.project import load_project, save_project
from cnnbuilder.core.training.distributed import DistributedError, torchrun_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
# The tutorial CNN has no BatchNorm and no Dropout: its gradient is exactly the mean over the batch.
SETTINGS = {"dataset": "shapes", "shapes_train": 300, "shapes_test": 64, "val_split": 0.2, "epochs": 1,
            "optimizer": "adam", "lr": 0.003, "grad_clip": 1.0, "seed": 3}


def _torchrun(args: list[str], tmp_path: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "cnnbuilder", "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=150)


def _rows(run_root: Path) -> list[dict]:
    (csv_path,) = run_root.glob("*/metrics.csv")
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_processes_with_batch_b_train_as_one_with_batch_2b(tmp_path, monkeypatch, capsys):
    project = load_project(EXAMPLES / "mnist_cnn.json")
    project.training = SETTINGS
    save_project(project, tmp_path / "p.json")
    common = ["p.json", "--device", "cpu", "--train-limit", "192"]  # 192 = 6 steps of 32

    monkeypatch.chdir(tmp_path)
    rc = main(["train", *common, "--batch-size", "32", "--checkpoint", "one.ckpt", "--log-dir", "one"])
    assert rc == 0, capsys.readouterr().err
    done = _torchrun([*common, "--batch-size", "16", "--checkpoint", "two.ckpt", "--log-dir", "two"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    one = torch.load(tmp_path / "one.ckpt", weights_only=True)
    two = torch.load(tmp_path / "two.ckpt", weights_only=True)
    assert one["step"] == two["step"] == 6
    worst = max((one["model"][k] - two["model"][k]).abs().max().item() for k in one["model"])
    assert worst < 1e-5
    # Rank 0 alone prints, and the all-reduced epoch metrics (training on shards, validation on
    # shards) are those of the single process.
    out = done.stdout
    assert out.count("training MNIST tutorial CNN") == 1 and "2 processes × batch 16" in out
    assert out.count("epoch 1/1") == 1 and out.count("test accuracy") == 1 and "[rank" not in done.stderr
    (a,), (b,) = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-5), key
    assert len(list((tmp_path / "two").iterdir())) == 1  # one run folder: rank 1 wrote nothing


def test_a_failure_is_each_process_own_message(tmp_path):
    save_project(load_project(EXAMPLES / "mnist_cnn.json"), tmp_path / "p.json")
    done = _torchrun(["p.json", "--device", "cpu", "--dataset", "mnist", "--data-root", str(tmp_path / "none")],
                     tmp_path)
    assert done.returncode != 0
    for rank in (0, 1):
        assert f"cnnbuilder train: [rank {rank}/2] " in done.stderr and "does not exist" in done.stderr
    # torchrun then reports the failed child with its own launcher traceback; none comes from cnnbuilder.
    assert "cnnbuilder/core" not in done.stderr and "cnnbuilder/cli" not in done.stderr


@pytest.mark.parametrize("env,needle", [
    ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE is 'two'"),
    ({"WORLD_SIZE": "2"}, "RANK is None"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "inconsistent"),
])
def test_a_broken_torchrun_environment_is_a_message(monkeypatch, capsys, env, needle):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    rc = main(["train", str(EXAMPLES / "mnist_cnn.json")])
    err = capsys.readouterr().err
    assert rc == 1 and needle in err and "Traceback" not in err


@settings(max_examples=int(os.environ.get("CNNB_EXAMPLES", 60)), deadline=None)
@given(st.dictionaries(st.sampled_from(["RANK", "WORLD_SIZE", "LOCAL_RANK"]),
                       st.one_of(st.integers(-3, 5).map(str), st.text(max_size=4))))
def test_fuzzed_torchrun_variables_give_a_place_or_a_message(env):
    try:
        place = torchrun_env(env)
    except DistributedError as exc:
        assert str(exc)
        return
    if place is not None:
        assert 0 <= place.rank < place.world_size and place.world_size > 1 and place.local_rank >= 0


def test_a_process_left_waiting_says_another_one_stopped():
    from cnnbuilder.core.training.engine import Trainer

    trainer = Trainer(load_project(EXAMPLES / "mnist_cnn.json").graph)
    trainer.world_size = 2
    failed = trainer._failure(RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer"))
    assert failed.message.startswith("lost contact with the other processes of this torchrun job")
    trainer.world_size = 1  # alone, the same error is an ordinary one
    assert "lost contact" not in trainer._failure(RuntimeError("Connection closed by peer")).message
