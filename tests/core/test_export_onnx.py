"""ONNX export: every example exports and matches PyTorch in onnxruntime; what cannot be exported or
verified is refused with one clear line and leaves no file; missing packages name the install command."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnbuilder.cli import main
from cnnbuilder.core.codegen import build_model
from cnnbuilder.core.export import onnx as onnx_export
from cnnbuilder.core.export.onnx import INSTALL_ONNX, OnnxExportError, export_onnx, load_weights
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.project import Project, load_project, save_project

pytest.importorskip("onnxruntime", reason="ONNX export needs pip install 'cnnbuilder[onnx]'")
pytest.importorskip("onnxscript", reason="ONNX export needs pip install 'cnnbuilder[onnx]'")
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def test_every_example_exports_and_verifies(example_path, tmp_path):
    project = load_project(example_path)
    out = tmp_path / "model.onnx"
    report = export_onnx(project.graph, out, title=project.name)
    assert out.is_file() and report.max_abs_diff <= 1e-4
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    opsets = {imp.domain: imp.version for imp in model.opset_import}
    assert report.opset == opsets.get("", opsets.get("ai.onnx"))
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["output"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # the batch size is symbolic
    assert f"opset {report.opset}" in report.message()
    # Any batch size runs, and the untrained weights are those of the seeded model.
    torch.manual_seed(0)
    reference = build_model(project.graph).eval()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.randn(5, *report.input_shape)
    with torch.no_grad():
        expected = reference(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary file left behind


def _unsupported_graph():
    """Input 1×28×28 -> AdaptiveMaxPool2d(5) -> Flatten -> Linear: the pooling's operator has no ONNX
    translation when its output size does not divide the input (28 -> 5)."""
    g = Graph()
    ids = [g.add_node("Input", {"shape": [1, 28, 28]}).id,
           g.add_node("AdaptiveMaxPool2d", {"output_size": 5}, name="odd_pool").id,
           g.add_node("Flatten").id, g.add_node("Linear", {"out_features": 10}).id]
    for a, b in zip(ids, ids[1:], strict=False):
        g.connect(a, b)
    return g


def test_an_unsupported_block_is_named_and_nothing_is_written(tmp_path, capsys):
    save_project(Project(_unsupported_graph(), "odd"), tmp_path / "odd.json")
    out = tmp_path / "model.onnx"
    rc = main(["export", str(tmp_path / "odd.json"), "--format", "onnx", "-o", str(out)])
    _o, err = capsys.readouterr()
    assert rc == 1 and "Traceback" not in err and not out.exists()
    assert "aten.adaptive_max_pool2d" in err and "'odd_pool'" in err and "output size divides" in err
    assert len(err.strip().splitlines()) == 1 and "\x1b" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.json"]  # the temporary file is gone too


def test_a_mismatch_in_onnxruntime_is_refused_with_the_difference(monkeypatch, tmp_path):
    real = onnx_export._run_onnxruntime
    monkeypatch.setattr(onnx_export, "_run_onnxruntime", lambda path, x: real(path, x) + 0.01)
    out = tmp_path / "model.onnx"
    out.write_bytes(b"an earlier export")
    with pytest.raises(OnnxExportError, match=r"differ by 0\.01 \(max abs\).*refused"):
        export_onnx(load_project(EXAMPLES / "lenet5.json").graph, out)
    assert out.read_bytes() == b"an earlier export"  # the refused export replaced nothing
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_weights_from_a_run_are_exported(tmp_path, capsys):
    project = load_project(EXAMPLES / "lenet5.json")
    torch.manual_seed(123)
    trained = build_model(project.graph).eval()
    state = trained.state_dict()
    pt, st_path = tmp_path / "model.pt", tmp_path / "model.safetensors"
    torch.save(state, pt)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(st_path))
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        expected = trained(x).numpy()
    out = tmp_path / "model.onnx"
    rc = main(["export", str(EXAMPLES / "lenet5.json"), "--format", "onnx", "-o", str(out), "--weights", str(st_path)])
    printed, err = capsys.readouterr()
    assert rc == 0, err
    assert "weights from model.safetensors" in printed and "opset" in printed and "verified" in printed
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4
    # A .pt state_dict and a cnnbuilder checkpoint load the same weights.
    ckpt = tmp_path / "run.ckpt"
    torch.save({"format": "cnnbuilder-checkpoint", "model": state}, ckpt)
    for weights in (pt, ckpt):
        fresh = build_model(project.graph).eval()
        assert load_weights(fresh, weights) == f"weights from {weights.name}"
        with torch.no_grad():
            assert torch.equal(fresh(x), trained(x))


@pytest.mark.parametrize("content,needle", [
    (None, "no such weights file"),
    (b"not a zip", "not a weights file"),
    ({"conv": "text"}, "expected a state_dict of tensors"),
    ({"layers.0.weight": torch.zeros(3)}, "different model"),
])
def test_bad_weights_are_a_message(tmp_path, content, needle, capsys):
    path = tmp_path / "w.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    out = tmp_path / "m.onnx"
    rc = main(["export", str(EXAMPLES / "lenet5.json"), "--format", "onnx", "-o", str(out), "--weights", str(path)])
    _o, err = capsys.readouterr()
    assert rc == 1 and needle in err and "Traceback" not in err and not out.exists()


@settings(max_examples=int(os.environ.get("CNNB_EXAMPLES", 30)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), zipped=st.booleans())
def test_fuzzed_weight_files_never_crash(tmp_path, data, zipped):
    path = tmp_path / ("w.pt" if zipped else "w.safetensors")
    if zipped:  # a real torch.save container around hostile contents
        torch.save({"layers.0.weight": torch.frombuffer(bytearray(data or b"\0"), dtype=torch.uint8)}, path)
    else:
        path.write_bytes(data)
    model = build_model(load_project(EXAMPLES / "lenet5.json").graph)
    with pytest.raises(OnnxExportError):
        load_weights(model, path)


def test_cli_needs_an_output_file_and_weights_need_onnx(capsys):
    assert main(["export", str(EXAMPLES / "lenet5.json"), "--format", "onnx"]) == 1
    assert "-o model.onnx" in capsys.readouterr().err
    assert main(["export", str(EXAMPLES / "lenet5.json"), "--weights", "w.pt"]) == 1
    assert "--format onnx" in capsys.readouterr().err


def test_missing_packages_name_the_install_command(monkeypatch, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert onnx_export.onnx_missing() == f"ONNX export needs onnxruntime: {INSTALL_ONNX}"
    project = load_project(EXAMPLES / "lenet5.json")
    with pytest.raises(OnnxExportError, match="cnnbuilder\\[onnx\\]"):
        export_onnx(project.graph, tmp_path / "m.onnx")
    rc = main(["export", str(EXAMPLES / "lenet5.json"), "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    _out, err = capsys.readouterr()
    assert rc == 2 and "pip install 'cnnbuilder[onnx]'" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())
