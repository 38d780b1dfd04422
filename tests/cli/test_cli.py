import json
import subprocess
import sys

import pytest

from cnnbuilder.cli import main

EX = "resources/examples"


def run(*args):
    return subprocess.run([sys.executable, "-m", "cnnbuilder.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_summary_table(capsys):
    assert main(["summary", f"{EX}/mnist_cnn.json"]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "16×28×28" in out and "12,832" in out
    assert "total: 28,938 trainable parameters" in out


def test_summary_json_schema(capsys):
    assert main(["summary", "--json", f"{EX}/resnet_small.json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"nodes", "total_params", "total_macs"} <= set(data)
    for n in data["nodes"]:
        assert {"id", "type", "output_shape", "params", "macs", "error"} <= set(n)
        assert n["error"] is None and isinstance(n["output_shape"], list)
    assert data["nodes"][0]["output_shape"] == [3, 32, 32]
    assert data["total_params"] == sum(n["params"] for n in data["nodes"])


def test_summary_json_reports_errors(tmp_path, capsys):
    from cnnbuilder.core.project import load_project, save_project

    p = load_project(f"{EX}/mnist_cnn.json")
    p.graph.set_param(p.graph.find("conv1").id, "kernel_size", 40)
    save_project(p, tmp_path / "bad.json")
    assert main(["summary", "--json", str(tmp_path / "bad.json")]) == 1
    data = json.loads(capsys.readouterr().out)
    conv = next(n for n in data["nodes"] if n["name"] == "conv1")
    assert conv["output_shape"] is None and "larger than the padded input" in conv["error"]


def test_validate_exit_codes(tmp_path):
    assert run("validate", f"{EX}/inception_block.json").returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text(open(f"{EX}/mnist_cnn.json").read().replace('"kernel_size": 5', '"kernel_size": 40', 1))
    r = run("validate", str(bad))
    assert r.returncode == 1 and "error in conv1 (Conv2d): kernel 40×40" in r.stdout
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "cnnbuilder-project", "version": 1, "nodes": [')
    r = run("validate", str(broken))
    assert r.returncode == 2 and "not valid JSON" in r.stderr and "Traceback" not in r.stderr
    r = run("validate", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "cannot open" in r.stderr


def test_validate_prints_the_apps_warnings_and_stays_valid(tmp_path):
    # The same verdict as the app: a model that does not fit its training data is valid, with a warning.
    r = run("validate", f"{EX}/vgg_cifar10.json")  # 3×32×32 input; the default data is 1×28×28 shapes
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    assert first.endswith("valid (27 blocks, output 10); ⚠ 1 warning against Shapes (built in)")
    assert second.startswith("warning in input (Input): Shapes (built in) images are 1×28×28")
    fits = tmp_path / "fits.json"
    data = json.loads(open(f"{EX}/vgg_cifar10.json").read())
    data["training"] = {"dataset": "cifar10"}
    fits.write_text(json.dumps(data))
    r = run("validate", str(fits))
    assert r.returncode == 0 and r.stdout.strip().endswith("valid (27 blocks, output 10)") and "warning" not in r.stdout


def test_export_writes_runnable_code(tmp_path):
    out = tmp_path / "model.py"
    r = run("export", f"{EX}/resnet_small.json", "-o", str(out), "--class-name", "small resnet")
    assert r.returncode == 0, r.stderr
    ns = {}
    exec(out.read_text(), ns)
    import torch

    model = ns["SmallResnet"]()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_export_refuses_invalid_graph(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(open(f"{EX}/mnist_cnn.json").read().replace('"kernel_size": 5', '"kernel_size": 40', 1))
    r = run("export", str(bad), "-o", str(tmp_path / "m.py"))
    assert r.returncode == 1 and "cannot generate code" in r.stderr
    assert not (tmp_path / "m.py").exists()


def test_layers_lists_every_block(capsys):
    from cnnbuilder.core.blocks import REGISTRY

    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    for t in REGISTRY:
        assert t in out


@pytest.mark.parametrize("args", [["summary"], ["export"], ["frobnicate", "x"]])
def test_usage_errors_do_not_traceback(args):
    r = run(*args)
    assert r.returncode != 0 and "Traceback" not in r.stderr
