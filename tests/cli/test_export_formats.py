"""`cnnbuilder export --script` and `--format ipynb`: files, messages and exit codes."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from cnnbuilder.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
MNIST = str(EXAMPLES / "mnist_cnn.json")


def test_script_and_notebook_are_written(tmp_path, capsys):
    assert main(["export", MNIST, "--script", "-o", str(tmp_path / "train.py")]) == 0
    text = (tmp_path / "train.py").read_text()
    ast.parse(text)
    assert "torchrun --nproc_per_node=4 train.py" in text and "class Net(nn.Module)" in text
    assert "wrote" in capsys.readouterr().out
    assert main(["export", MNIST, "--format", "script"]) == 0  # to standard output
    assert capsys.readouterr().out == text
    assert main(["export", MNIST, "--format", "ipynb", "-o", str(tmp_path / "train.ipynb")]) == 0
    nb = json.loads((tmp_path / "train.ipynb").read_text())
    assert nb["nbformat"] == 4 and sum(c["cell_type"] == "code" for c in nb["cells"]) == 7
    assert main(["export", MNIST, "--format", "py", "-o", str(tmp_path / "model.py")]) == 0
    assert "def forward" in (tmp_path / "model.py").read_text()


def test_bad_requests_get_one_line_and_an_exit_code(tmp_path, capsys):
    assert main(["export", str(EXAMPLES / "resnet_small.json"), "--script"]) == 1
    err = capsys.readouterr().err
    assert "does not fit the data" in err and "resnet_small.json" in err and "Traceback" not in err
    assert main(["export", MNIST, "--script", "--format", "ipynb"]) == 1
    assert "contradict" in capsys.readouterr().err
    target = tmp_path / "missing" / "train.py"
    assert main(["export", MNIST, "--script", "-o", str(target)]) == 2
    assert str(target) in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    data = json.loads(Path(MNIST).read_text())
    data["training"] = {"epochs": "many", "optimizer": "adam"}
    bad.write_text(json.dumps(data))
    assert main(["export", str(bad), "--script", "-o", str(tmp_path / "t.py")]) == 0
    assert "warning" in capsys.readouterr().err  # the bad value falls back to its default, as in the app
