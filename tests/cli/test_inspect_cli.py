"""`cnnbuilder predict` and `cnnbuilder explain` (issue 11 §3, §4), the arithmetic and receptive
fields in `summary`, and one clear line (no traceback, a non-zero exit) for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cnnbuilder.cli import main
from cnnbuilder.core.inspect.explain import grad_cam, saliency
from cnnbuilder.core.inspect.images import Preprocessing, prepare_image
from cnnbuilder.core.inspect.predict import build, predict
from cnnbuilder.core.project import load_project, save_project
from cnnbuilder.core.training.checkpoint import export_weights
from cnnbuilder.core.training.synthetic import CLASSES as SHAPE_CLASSES

EX = "resources/examples"
MODEL = f"{EX}/mnist_cnn.json"
STATS = ["--mean", "0.25", "--std", "0.27"]  # skip computing the training images' statistics (seconds)
PREP = Preprocessing((1, 28, 28), (0.25,), (0.27,), class_names=SHAPE_CLASSES)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inspect")
    graph = load_project(MODEL).graph
    torch.manual_seed(11)
    export_weights(build(graph, seed=11).model, graph, d)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(d / "photo.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)).save(d / "digit.png")
    (d / "notes.txt").write_text("not an image")
    return d


def run(*args):
    return subprocess.run([sys.executable, "-m", "cnnbuilder.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=180)


def test_predict_prints_the_top_classes_with_what_was_converted(files, capsys):
    assert main(["predict", MODEL, "--weights", str(files / "model.pt"), str(files / "photo.png"),
                 str(files / "digit.png"), "--top", "3", *STATS]) == 0
    out = capsys.readouterr().out
    lm = build(load_project(MODEL).graph, weights=files / "model.pt")
    best = predict(lm.model, prepare_image(files / "photo.png", PREP).x, SHAPE_CLASSES, top=3)
    assert f"photo.png: {best.top[0].name} ({best.top[0].probability:.1%})" in out
    assert "converted from RGB to grayscale; resized from 80×60 to 28×28" in out
    assert f"   1. {best.top[0].name}" in out and f"   3. {best.top[2].name}" in out and "   4." not in out
    assert "digit.png:" in out


def test_predict_json_has_the_probabilities_of_the_model(files, capsys):
    assert main(["predict", MODEL, "--weights", str(files / "model.safetensors"), str(files / "digit.png"),
                 "--json", *STATS]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["classes"] == 10 and data["output"] == "logits"
    (entry,) = data["images"]
    assert entry["error"] is None and len(entry["top"]) == 5
    lm = build(load_project(MODEL).graph, weights=files / "model.pt")
    want = predict(lm.model, prepare_image(files / "digit.png", PREP).x, top=5)
    assert [t["class"] for t in entry["top"]] == [r.index for r in want.top]
    np.testing.assert_allclose([t["probability"] for t in entry["top"]], [r.probability for r in want.top],
                               rtol=1e-6)
    assert entry["top"][0]["name"] in ("circle", "square", "triangle", "plus", "ring", "diamond", "horizontal bars",
                                       "vertical bars", "star", "x")


def test_predict_reports_a_bad_image_and_goes_on(files, capsys):
    code = main(["predict", MODEL, "--weights", str(files / "model.pt"), str(files / "notes.txt"),
                 str(files / "digit.png"), *STATS])
    out, err = capsys.readouterr()
    assert code == 2 and "digit.png:" in out
    assert err.strip() == f"cnnbuilder: {files / 'notes.txt'}: not an image (or in a format Pillow cannot read)"


def test_explain_writes_the_overlay_and_the_raw_map(files, capsys, tmp_path):
    png, npy = tmp_path / "ov.png", tmp_path / "map.npy"
    assert main(["explain", MODEL, "--weights", str(files / "model.pt"), str(files / "photo.png"), "-o", str(png),
                 "--npy", str(npy), "--block", "conv1", "--target", "2", *STATS]) == 0
    out = capsys.readouterr().out
    assert f"wrote {png}: Grad-CAM at conv1 for class 2 'triangle'" in out
    assert f"wrote {npy}: the raw map, float32 28×28" in out and "note: converted from RGB to grayscale" in out
    lm = build(load_project(MODEL).graph, weights=files / "model.pt")
    x = prepare_image(files / "photo.png", PREP).x
    want = grad_cam(lm.model, lm.graph, lm.attr_of, x, lm.graph.find("conv1").id, 2)
    got = np.load(npy)
    assert got.dtype == np.float32 and got.shape == (28, 28)
    np.testing.assert_array_equal(got, want.map)
    with Image.open(png) as im:
        assert im.size == (224, 224)


def test_explain_saliency_by_class_name_and_smoothgrad(files, capsys, tmp_path):
    npy = tmp_path / "s.npy"
    assert main(["explain", MODEL, "--weights", str(files / "model.pt"), str(files / "digit.png"), "--method",
                 "saliency", "--target", "star", "--npy", str(npy), *STATS]) == 0
    assert "Saliency (gradient) for class 8 'star'" in capsys.readouterr().out
    lm = build(load_project(MODEL).graph, weights=files / "model.pt")
    np.testing.assert_array_equal(np.load(npy), saliency(lm.model, prepare_image(files / "digit.png", PREP).x, 8).map)
    assert main(["explain", MODEL, "--weights", str(files / "model.pt"), str(files / "digit.png"), "--method",
                 "smoothgrad", "--samples", "4", "-o", str(tmp_path / "sg.png"), *STATS]) == 0
    assert "note: 4 samples, noise 0.15 of the value range" in capsys.readouterr().out


def bad_cases(files, tmp):
    other = tmp / "other"
    graph = load_project(f"{EX}/lenet5.json").graph
    export_weights(build(graph).model, graph, other)
    w, img = str(files / "model.pt"), str(files / "digit.png")
    o = ["-o", str(tmp / "o.png")]
    broken = load_project(MODEL)
    broken.graph.set_param(broken.graph.find("conv1").id, "kernel_size", 40)
    save_project(broken, tmp / "broken.json")
    return [
        (["predict", str(tmp / "broken.json"), "--weights", w, img], 1, "the model has problems; fix them first"),
        (["explain", MODEL, "--weights", str(tmp / "none.pt"), img, *o], 2, "none.pt: no such weights file"),
        (["explain", MODEL, "--weights", str(tmp), img, *o], 2, "is a folder, not a weights file"),
        (["explain", MODEL, "--weights", str(other / "model.pt"), img, *o], 1, "the weights belong to a different"),
        (["explain", MODEL, "--weights", str(files / "notes.txt"), img, *o], 2, "not a weights file"),
        (["explain", MODEL, "--weights", w, str(files / "notes.txt"), *o], 2, "not an image"),
        (["explain", MODEL, "--weights", w, str(tmp / "gone.png"), *o], 2, "gone.png: no such file"),
        (["explain", MODEL, "--weights", w, img, *o, "--block", "fc1"], 1, "Grad-CAM cannot look at fc1 (Linear)"),
        (["explain", MODEL, "--weights", w, img, *o, "--block", "nope"], 1, "no block named 'nope'"),
        (["explain", MODEL, "--weights", w, img, *o, "--target", "10"], 1, "class 10 is out of range"),
        (["explain", MODEL, "--weights", w, img, *o, "--target", "-1"], 1, "class -1 is out of range"),
        (["explain", MODEL, "--weights", w, img, *o, "--target", "dog"], 1, "--target 'dog' is neither"),
        (["explain", MODEL, "--weights", w, img], 1, "say where the result goes"),
        (["explain", MODEL, "--weights", w, img, *o, "--opacity", "2"], 1, "--opacity must be between 0 and 1"),
        (["explain", MODEL, "--weights", w, img, *o, "--method", "saliency", "--block", "conv1"], 1,
         "--block goes with --method gradcam"),
        (["explain", MODEL, "--weights", w, img, "-o", str(tmp)], 2, "cannot write the picture"),
        (["explain", str(tmp / "nope.json"), "--weights", w, img, *o], 2, "cannot open"),
        (["predict", MODEL, "--weights", w, img, "--top", "0"], 1, "--top must be at least 1"),
        (["predict", MODEL, "--weights", w, img, "--mean", "0.1"], 1, "--mean and --std go together"),
        (["predict", MODEL, "--weights", w, img, "--mean", "0.1", "0.2", "--std", "0.1", "0.2"], 1,
         "one mean and one std per channel (1)"),
        (["predict", MODEL, "--weights", w, img, "--mean", "0.1", "--std", "0"], 1, "positive"),
    ]


def call(args) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # the project loader exits at once, as every command does
        return exc.code


def test_bad_inputs_get_one_line_and_a_non_zero_exit(files, tmp_path, capsys):
    for args, code, message in bad_cases(files, tmp_path):
        extra = [] if "--mean" in args else STATS
        assert call([*args, *extra]) == code, args
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, err)
        assert lines[0].startswith("cnnbuilder: ") and "Traceback" not in err and not out.strip(), (args, out)


def test_models_that_are_no_image_classifiers_are_refused(files, tmp_path, capsys):
    p = load_project(MODEL)
    g = p.graph
    g.remove_node(g.find("fc1").id)
    g.remove_node(g.find("flatten1").id)
    save_project(p, tmp_path / "maps.json")
    assert main(["predict", str(tmp_path / "maps.json"), "--weights", str(files / "model.pt"),
                 str(files / "digit.png"), *STATS]) == 1
    err = capsys.readouterr().err
    assert "one score per class (its output is 32×7×7)" in err and len(err.strip().splitlines()) == 1


def test_hostile_block_names_are_escaped(files, tmp_path, capsys):
    p = load_project(MODEL)
    p.graph.rename(p.graph.find("conv1").id, "evil\x1b[2J")
    save_project(p, tmp_path / "evil.json")
    assert main(["explain", str(tmp_path / "evil.json"), "--weights", str(files / "model.pt"),
                 str(files / "digit.png"), "--block", "fc1", "-o", str(tmp_path / "o.png"), *STATS]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "evil" in err  # cleaned where it entered; escaped on the way out regardless


def test_statistics_come_from_the_training_data_by_default(files, tmp_path):
    """A real process, no --mean/--std: the shapes dataset is drawn to get its mean and std, as training does."""
    r = run("predict", MODEL, "--weights", files / "model.pt", files / "digit.png", "--json")
    assert r.returncode == 0, r.stderr
    notes = json.loads(r.stdout)["images"][0]["notes"]
    assert any("normalised with the training images' mean 0.256 and std 0.269" in n for n in notes)
    r = run("explain", MODEL, "--weights", files / "model.pt", files / "gone.png", "-o", tmp_path / "x.png")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_summary_shows_fields_and_formulas_and_where_a_shape_breaks(tmp_path, capsys):
    assert main(["summary", MODEL, "--formulas"]) == 0
    out = capsys.readouterr().out
    assert "field" in out.splitlines()[1] and "16×16, jump 4" in out
    assert "  H, W: ⌊(28 − 5 + 2·2)/1⌋ + 1 = 28" in out and "  params: 16·(1·5·5) + 16 = 416" in out
    assert "  features: 32·7·7 = 1568" in out
    assert main(["summary", "--json", MODEL]) == 0
    nodes = {n["name"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes["pool2"]["receptive_field"] == [16, 16] and nodes["pool2"]["jump"] == [4, 4]
    assert nodes["fc1"]["receptive_field"] is None and "params: 1568·10 + 10 = 15690" in nodes["fc1"]["arithmetic"]
    p = load_project(MODEL)
    p.graph.set_param(p.graph.find("conv1").id, "kernel_size", 40)
    p.graph.set_param(p.graph.find("conv1").id, "padding", 0)
    save_project(p, tmp_path / "bad.json")
    assert main(["validate", str(tmp_path / "bad.json")]) == 1
    out = capsys.readouterr().out
    assert "error in conv1 (Conv2d): kernel 40×40 is larger than the padded input 28×28\n" \
           "  H: ⌊(28 − 40 + 0)/1⌋ + 1 = −11: the kernel is larger than the padded input" in out
