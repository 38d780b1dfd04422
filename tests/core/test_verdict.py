"""The one verdict on a project (core/verdict.py): errors when the model cannot run, warnings when
it is valid but does not fit the chosen data, the one-click fixes, and the headline every view shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cnnbuilder.core import verdict as V
from cnnbuilder.core.commands import SetParam
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.project import load_project
from cnnbuilder.core.training.config import SETTINGS, TrainConfig
from cnnbuilder.core.verdict import DATA, ERROR, FIT, NOTE, WARNING, MetaCache, judge
from tests.fuzz import fuzz_settings, values

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def graph(name: str) -> Graph:
    return load_project(EXAMPLES / f"{name}.json").graph


def test_a_model_that_does_not_fit_the_data_is_valid_with_a_warning():
    g = graph("vgg_cifar10")  # 3×32×32 input, shapes are 1×28×28 by default
    v = judge(g, {})
    assert v.ok and not v.ready and v.errors == ()
    assert v.headline() == "✓ valid · ⚠ 1 warning"
    assert v.parts() == [("ok", "✓ valid"), (WARNING, "⚠ 1 warning")]
    (w,) = v.warnings
    assert w.level == WARNING and w.kind == FIT and w.node_id == "n1" and w.holds_training
    assert "1×28×28" in w.message and "3×32×32" in w.message
    assert v.node_warning("n1") == w.message and v.node_warnings() == {"n1": w.message}
    assert v.node_warning("n2") is None
    # Both cures: change the model (undoable), or draw the shapes at the model's size.
    assert [f.label for f in w.fixes] == ["Set Input to 1×28×28", "Make the shapes 3×32×32"]
    model_fix, data_fix = w.fixes
    assert (model_fix.node_id, model_fix.param, model_fix.value) == ("n1", "shape", [1, 28, 28])
    assert data_fix.settings == {"shapes_channels": 3, "shapes_size": 32} and data_fix.node_id is None
    # Each fix really cures it.
    assert judge(g, data_fix.settings).warnings == ()
    SetParam(model_fix.node_id, model_fix.param, model_fix.value).redo(g)
    assert judge(g, {}).headline() == "✓ valid" and judge(g, {}).ready


def test_the_class_count_is_a_warning_on_the_last_block_with_its_fix():
    g = graph("mnist_cnn")
    v = judge(g, {"dataset": "cifar100"})
    assert v.ok and v.headline() == "✓ valid · ⚠ 2 warnings" and v.dataset == "CIFAR-100"
    inp, out = v.warnings
    assert inp.node_id == "n1" and out.node_id == "n9" and "100 classes" in out.message
    assert [f.label for f in out.fixes] == ["Set fc1 to 100 outputs"]
    assert [f.label for f in inp.fixes] == ["Set Input to 3×32×32"]  # no shapes fix for another dataset
    assert judge(g, {"dataset": "mnist"}).headline() == "✓ valid"
    assert judge(g, TrainConfig(dataset="cifar10")).headline() == "✓ valid · ⚠ 1 warning"  # a config works too


def test_a_model_that_cannot_run_has_errors_and_no_fit_warnings():
    g = graph("mnist_cnn")
    SetParam("n5", "kernel_size", 30).redo(g)  # conv2's kernel is larger than its input
    v = judge(g, {"dataset": "cifar100"})
    assert not v.ok and not v.ready
    assert [(e.level, e.node_id) for e in v.errors] == [(ERROR, "n5")]  # the blocks after it only wait
    assert v.warnings == ()  # the fit of a model that cannot run is not judged
    assert v.headline() == "✗ 1 error" and v.parts() == [(ERROR, "✗ 1 error")]
    empty = judge(Graph(), {})
    assert empty.errors and "no Input" in empty.errors[0].message and empty.errors[0].node_id is None
    assert empty.errors[0].detail == "" and empty.errors[0].text == empty.errors[0].message


def test_an_arithmetic_error_carries_the_step_that_goes_wrong():
    g = graph("mnist_cnn")
    SetParam("n5", "kernel_size", 30).redo(g)
    (e,) = judge(g, {}).errors
    assert e.message == "kernel 30×30 is larger than the padded input 18×18"  # the message stays short
    assert e.detail == "H: ⌊(14 − 30 + 2·2)/1⌋ + 1 = −11: the kernel is larger than the padded input"
    assert e.text == f"{e.message} ({e.detail})"
    assert judge(g, {}).error_details() == {"n5": e.detail}
    # an error that is not arithmetic has none
    g = graph("mnist_cnn")
    SetParam("n5", "in_channels", 3).redo(g)
    (e,) = judge(g, {}).errors
    assert e.detail == "" and judge(g, {}).error_details() == {}


def test_data_problems_are_warnings_and_only_unusable_data_holds_training(tmp_path):
    g = graph("mnist_cnn")
    missing = judge(g, {"dataset": "folder", "data_root": str(tmp_path / "nowhere")})
    (w,) = missing.warnings
    assert w.kind == DATA and w.node_id is None and "does not exist" in w.message and w.holds_training
    assert missing.ok and not missing.ready and missing.meta is None
    assert judge(g, {"dataset": "folder"}).warnings[0].message.startswith("choose the folder")

    root = tmp_path / "pets"  # 2 classes of 28×28 grey images, and one class without images
    for c in ("cats", "dogs"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((28, 28), 60 * i, np.uint8)).save(root / c / f"{i}.png")
    (root / "owls").mkdir()
    v = judge(g, {"dataset": "folder", "data_root": str(root)})
    kinds = {w.kind for w in v.warnings}
    assert kinds == {FIT, NOTE}  # 10 outputs for 3 classes; the empty class is a note
    note = next(w for w in v.warnings if w.kind == NOTE)
    assert "owls" in note.message and not note.holds_training
    assert [f.label for f in next(w for w in v.warnings if w.kind == FIT).fixes] == ["Set fc1 to 3 outputs"]


def test_folder_scans_are_cached_until_forgotten(tmp_path, monkeypatch):
    root = tmp_path / "data"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(root / c / "0.png")
    calls = []
    real = V.dataset_meta
    monkeypatch.setattr(V, "dataset_meta", lambda cfg: calls.append(cfg.dataset) or real(cfg))
    cache = MetaCache()
    cfg = TrainConfig(dataset="folder", data_root=str(root))
    assert cache.get(cfg).num_classes == 2 and cache.get(cfg).num_classes == 2
    assert calls == ["folder"]
    (root / "c").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(root / "c" / "0.png")
    assert cache.get(cfg).num_classes == 2  # still the remembered scan
    cache.forget()
    assert cache.get(cfg).num_classes == 3 and calls == ["folder", "folder"]
    cache.get(TrainConfig())
    cache.get(TrainConfig())
    assert calls.count("shapes") == 2  # the built-in datasets are not scanned: nothing to keep


def test_the_verdict_is_computed_without_qt_or_torch():
    code = (
        "import sys\n"
        "from cnnbuilder.core.project import load_project\n"
        "from cnnbuilder.core.verdict import judge\n"
        f"g = load_project({str(EXAMPLES / 'vgg_cifar10.json')!r}).graph\n"
        "v = judge(g, {})\n"
        "bad = [m for m in ('PySide6', 'pyqtgraph', 'torch') if m in sys.modules]\n"
        "print(v.headline(), '|', ','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "✓ valid · ⚠ 1 warning |"


@fuzz_settings(60, 600)
@given(st.dictionaries(st.sampled_from(sorted(set(SETTINGS) - {"data_root"}) + ["bogus"]), values, max_size=6),
       st.sampled_from(["mnist_cnn", "vgg_cifar10", "lenet5"]))
def test_hostile_settings_never_break_the_verdict(settings, example):
    # (no hostile data_root: "." or "/" would scan whatever folder the tests run in)
    v = judge(graph(example), settings)
    assert v.ok  # the examples are valid whatever data is chosen
    assert v.headline().startswith("✓ valid")
    assert len(v.parts()) == 1 + bool(v.warnings)
    for w in v.warnings:
        assert w.level == WARNING and isinstance(w.message, str) and w.message
        for f in w.fixes:
            assert (f.settings is None) != (f.param is None)
