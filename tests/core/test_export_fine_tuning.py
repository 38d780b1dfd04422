"""The exported training script of a project that starts from a weights file (fine-tuning) starts
from it as the app does: the same epochs, to float rounding; `--init-weights ''` trains from random
values; a missing or damaged file is one line, never a traceback. A project without one gets the
script it always got."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnbuilder.core.codegen import generate, instantiate
from cnnbuilder.core.export import generate_script
from cnnbuilder.core.training import node_weights

from .script_helpers import SMALL, load_script, project, read_metrics, write_script
from .test_export_script import app_run, assert_same_epochs


def weights_for(p, path, seed=7, classes=None) -> None:
    import torch

    g = p.graph.copy()
    if classes is not None:
        fc = next(n for n in g if n.type == "Linear")
        g.set_param(fc.id, "out_features", classes)
    torch.manual_seed(seed)
    gen = generate(g)
    model = instantiate(gen)
    node_weights.save(path, {nid: model.get_submodule(a).state_dict() for nid, a in gen.attr_of.items()
                             if model.get_submodule(a).state_dict()})


def test_the_script_starts_from_the_weights_as_the_app_does(tmp_path, capsys):
    p = project(**dict(SMALL, epochs=1))
    p.path = tmp_path / "proj.json"  # the setting is relative to the project's folder
    weights_for(p, tmp_path / "w.pt", classes=5)  # its classifier does not fit: skipped, the rest loads
    p.training["init_weights"] = "w.pt"
    text = generate_script(p)
    assert f"INIT_WEIGHTS = {str(tmp_path / 'w.pt')!r}" in text and "def copy_blocks(" in text  # (a short path)
    script = load_script(write_script(p, tmp_path / "s"))
    script.main(["--out", str(tmp_path / "a"), "--device", "cpu"])
    out = capsys.readouterr().out
    assert "started from w.pt: loaded 4 of 6 weight tensors; skipped 2: fc1.weight has shape (10, 1568), the file " \
           "(5, 1568); fc1.bias has shape (10,), the file (5,)" in out
    _, epochs, _ = app_run(p, init_weights=str(tmp_path / "w.pt"))
    assert_same_epochs(epochs, read_metrics(tmp_path / "a"))

    script.main(["--out", str(tmp_path / "b"), "--device", "cpu", "--init-weights", ""])
    assert "started from" not in capsys.readouterr().out
    assert read_metrics(tmp_path / "b")[0]["train_loss"] != read_metrics(tmp_path / "a")[0]["train_loss"]


@pytest.mark.parametrize("payload,message", [
    (None, "no such weights file (--init-weights '' trains from random values)"),
    (b"not a pickle", "not a weights file that can be read safely"),
    ("state_dict", "not a cnnbuilder weights file"),
])
def test_bad_weights_files_are_one_line(tmp_path, payload, message):
    import torch

    p = project(**SMALL)
    bad = tmp_path / "w.pt"
    if payload == "state_dict":
        torch.save(instantiate(generate(p.graph)).state_dict(), bad)
    elif payload is not None:
        bad.write_bytes(payload)
    p.training["init_weights"] = str(bad)
    path = write_script(p, tmp_path / "s")
    r = subprocess.run([sys.executable, str(path), "--out", str(tmp_path / "o"), "--device", "cpu", "--epochs", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"{bad}: {message}" if payload is None else r.stderr.strip().startswith(
        f"{bad}: {message}")


def test_scripts_without_fine_tuning_are_unchanged_and_with_it_ruff_clean(tmp_path):
    p = project(**SMALL)
    plain = generate_script(p)
    assert "init_weights" not in plain.replace("'init_weights': ''", "") and "copy_blocks" not in plain
    weights_for(p, tmp_path / "w.pt")
    p.training["init_weights"] = str(tmp_path / "w.pt")
    path = tmp_path / "tuned.py"
    path.write_text(generate_script(p), encoding="utf-8")
    rules = ["--line-length", "120", "--select", "E,F,W,I,B,UP", "--target-version", "py310"]
    for extra in (rules, [], ["--preview", "--select", "E3"]):
        r = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", *extra, str(path)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:]
