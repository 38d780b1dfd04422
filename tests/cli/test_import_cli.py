"""`cnnbuilder import`: a project (and weights) out, or exit 2 with one line on stderr."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cnnbuilder.cli import main
from cnnbuilder.core.project import load_project
from cnnbuilder.core.shapes import analyze
from cnnbuilder.core.training import node_weights

MODEL = """
    from torch import nn
    class Net(nn.Module):
        def __init__(self, classes=10):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
            self.fc = nn.Linear(4 * 3 * 3, classes)
        def forward(self, x):
            return self.fc(self.features(x).flatten(1))
"""


def test_import_writes_a_project_and_weights(tmp_path, capsys):
    src = tmp_path / "model.py"
    src.write_text(textwrap.dedent(MODEL))
    out, weights = tmp_path / "p.json", tmp_path / "w.pt"
    code = main(["import", f"{src}:Net", "-o", str(out), "--args", '{"classes": 4}', "--input", "1x8x8",
                 "--weights", str(weights)])
    assert code == 0
    assert f"wrote {out} (6 blocks in 1 group; weights in {weights})" in capsys.readouterr().out
    project = load_project(out)
    a = analyze(project.graph)
    assert a.ok and a.input_shape == (1, 8, 8) and a.output_shape == (4,)
    assert project.graph.groups[0].name == "features"
    assert project.training["init_weights"] == str(weights)
    assert set(node_weights.load(weights)) == {project.graph.find("fc").id, project.graph.find("0").id}


def test_import_torchvision_with_a_state_dict(tmp_path):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_1(num_classes=3)
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    out = tmp_path / "sq.json"
    r = subprocess.run([sys.executable, "-m", "cnnbuilder.cli", "import", "torchvision:squeezenet1_1", "-o", str(out),
                        "--args", '{"num_classes": 3}', "--input", "3x64x64", "--state-dict", str(tmp_path / "sd.pt"),
                        "--weights", str(tmp_path / "w.pt")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    blocks = node_weights.load(tmp_path / "w.pt")
    g = load_project(out).graph
    conv = next(n for n in g if n.type == "Conv2d")
    assert torch.equal(blocks[conv.id]["weight"], model.features[0].weight)


@pytest.mark.parametrize("args, message", [
    (["torchvision:resnet19"], "cannot import: torchvision has no classification model 'resnet19'"),
    (["torchvision:resnet18", "--input", "3x"], "--input '3x': input shape: expected sizes like 3x224x224"),
    (["torchvision:resnet18", "--args", "{nope"], "--args is not JSON"),
    (["torchvision:resnet18", "--args", "[1]"], "--args must be a JSON object"),
    (["nowhere.py:Net"], "cannot import: nowhere.py: no such file"),
    (["torchvision:resnet18", "--timeout", "0"], "--timeout must be a positive number"),
])
def test_import_refusals_exit_2_with_one_line(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["import", *args, "-o", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "p.json").exists()


def test_import_refusal_names_the_line(tmp_path):
    src = tmp_path / "model.py"
    src.write_text(textwrap.dedent("""
        import torch
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(1, 2, 3)
            def forward(self, x):
                return torch.fft.fft2(self.c(x)).real
    """))
    r = subprocess.run([sys.executable, "-m", "cnnbuilder.cli", "import", f"{src}:Net", "-o", str(tmp_path / "p.json"),
                        "--input", "1x8x8"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "cnnbuilder: cannot import: model.py:9: torch.fft.fft2 has no block (nothing was imported)\n"


def test_import_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = capsys.readouterr().out
    for option in ("--args", "--input", "--weights", "--state-dict", "--timeout", "-o"):
        assert option in text
