"""`cnnbuilder train`: trains, prints, writes checkpoints and weights; bad input is a message and an
exit code, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnbuilder.cli import main
from cnnbuilder.core.project import load_project, save_project

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
MNIST = str(EXAMPLES / "mnist_cnn.json")
FAST = ["--epochs", "1", "--batch-size", "32"]


@pytest.fixture
def small_project(tmp_path) -> Path:
    """The tutorial CNN with small built-in-data settings saved in the project, as the panel saves them."""
    project = load_project(MNIST)
    project.training = {"dataset": "shapes", "shapes_train": 600, "shapes_test": 120, "lr": 0.003, "epochs": 1}
    path = tmp_path / "proj.json"
    save_project(project, path)
    return path


def test_trains_prints_and_writes_checkpoint_and_weights(small_project, tmp_path, capsys):
    ckpt = tmp_path / "out" / "run.ckpt"
    export = tmp_path / "weights"
    rc = main(["train", str(small_project), "--checkpoint", str(ckpt), "--export-weights", str(export)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "540 training, 60 validation, 120 test images" in out  # the project's own settings were used
    assert "epoch 1/1: train loss" in out and "test accuracy" in out and "circle" in out
    assert ckpt.exists() and {p.name for p in export.iterdir()} == {"model.py", "model.pt", "model.safetensors"}
    state = torch.load(export / "model.pt", weights_only=True)
    assert "layers.0.weight" in state

    rc = main(["train", str(small_project), "--resume", str(ckpt), "--epochs", "2", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "after 2 epoch(s)" in out and "training " not in out  # --quiet: only the result


def test_options_override_the_project(small_project, capsys):
    rc = main(["train", str(small_project), "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.8", "--nesterov",
               "--scheduler", "cosine", "--val-split", "0", "--hflip", "--train-limit", "200"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "200 training, 0 validation" in out and "val loss" not in out


@pytest.mark.parametrize("args,code,needle", [
    (["train", "/no/such/project.json"], 2, "cannot open"),
    (["train", str(EXAMPLES / "vgg_cifar10.json"), *FAST], 1, "Input block takes 3×32×32"),
    (["train", MNIST, "--dataset", "mnist", "--data-root", "/no/such/dir"], 2, "does not exist"),
    (["train", MNIST, "--lr", "-1"], 1, "lr: must be at least"),
    (["train", MNIST, "--device", "tpu"], 1, "device"),
    (["train", MNIST, "--hue", "0.7"], 1, "hue: must be at most"),
    (["train", MNIST, "--resume", "/no/such.ckpt"], 2, "no such checkpoint"),
])
def test_bad_input_is_a_message_and_an_exit_code(args, code, needle, capsys):
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc == code, (out, err)
    assert needle in err and "Traceback" not in err + out


def test_failed_training_exits_3_with_advice(capsys):
    # LeNet's Tanh cannot die like ReLU, so MSE at this rate overflows for certain within 3 epochs.
    rc = main(["train", str(EXAMPLES / "lenet5.json"), "--optimizer", "sgd", "--lr", "50", "--loss", "mse",
               "--epochs", "3", "--batch-size", "32", "--train-limit", "600"])
    out, err = capsys.readouterr()
    assert rc == 3 and "learning rate" in err


def test_missing_cuda_is_a_message(monkeypatch, small_project, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["train", str(small_project), "--device", "cuda"])
    assert rc == 1 and "no CUDA GPU" in capsys.readouterr().err


def test_invalid_project_file_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "cnnbuilder-project", "version": 1, "nodes": "oops"}))
    proc = subprocess.run([sys.executable, "-m", "cnnbuilder.cli", "train", str(bad)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "nodes" in proc.stderr and "Traceback" not in proc.stderr


def _weights_file(project_path: Path, path: Path) -> None:
    """A per-block weights file for the project's model (as File ▸ Import writes one)."""
    from cnnbuilder.core.codegen import generate, instantiate
    from cnnbuilder.core.training import node_weights

    gen = generate(load_project(project_path).graph)
    model = instantiate(gen)
    node_weights.save(path, {nid: model.get_submodule(a).state_dict() for nid, a in gen.attr_of.items()
                             if model.get_submodule(a).state_dict()})


def test_init_weights_from_the_project_or_the_option(small_project, tmp_path, capsys, monkeypatch):
    _weights_file(small_project, tmp_path / "w.pt")
    project = load_project(small_project)
    project.training = {**project.training, "init_weights": "w.pt"}  # relative to the project's folder
    save_project(project, small_project)
    monkeypatch.chdir(tmp_path.parent)  # not the project's folder
    rc = main(["train", str(small_project), "--train-limit", "100"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "note: started from w.pt: loaded 6 of 6 weight tensors" in err

    # On the command line a relative path is the working folder's; '' trains from scratch.
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    rc = main(["train", str(small_project), "--train-limit", "100", "--init-weights", "w.pt"])
    out, err = capsys.readouterr()
    assert rc == 2 and f"cnnbuilder train: {tmp_path / 'sub' / 'w.pt'}: no such file" in err
    assert "Traceback" not in err and "training " not in out
    rc = main(["train", str(small_project), "--train-limit", "100", "--init-weights", ""])
    out, err = capsys.readouterr()
    assert rc == 0 and "started from" not in err
