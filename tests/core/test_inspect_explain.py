"""Grad-CAM, saliency and SmoothGrad (issue 11 §4) against captum on the example models, and
predictions (§3) against running the exported model on the same preprocessed tensor."""

from __future__ import annotations

import importlib.util
import random
import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cnnbuilder.core.graph import Graph
from cnnbuilder.core.inspect.explain import (
    ExplainError,
    cam_blocks,
    colorize,
    default_cam_block,
    explain_image,
    find_cam_block,
    grad_cam,
    overlay,
    saliency,
    save_npy,
    save_png,
    smooth_grad,
)
from cnnbuilder.core.inspect.images import Preprocessing, prepare_image
from cnnbuilder.core.inspect.predict import LOG_PROBS, PROBS, ModelError, build, predict
from cnnbuilder.core.project import load_project
from cnnbuilder.core.training.checkpoint import export_weights
from tests.fuzz import EXAMPLES, fuzz_settings, mutate_bytes

captum_attr = pytest.importorskip("captum.attr", reason="captum (a test-only dependency) checks the maps")
LayerGradCam, LayerAttribution = captum_attr.LayerGradCam, captum_attr.LayerAttribution
Saliency, NoiseTunnel = captum_attr.Saliency, captum_attr.NoiseTunnel

EXAMPLE = {p.stem: p for p in EXAMPLES}
TOL = 1e-5


def loaded(example, seed=0):
    return build(load_project(EXAMPLE[example]).graph, seed=seed)


def sample(lm, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, *lm.analysis.input_shape, generator=g)


def close(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    scale = max(float(np.abs(b).max()), 1e-12)
    assert float(np.abs(a - b).max()) <= TOL * max(scale, 1.0), (float(np.abs(a - b).max()), scale)


def captum_layer(lm, node_id):
    """The module captum hooks for a block, and whether it is that module's input (Add, Concat)."""
    node = lm.graph.node(node_id)
    if node.spec.module:
        return lm.model.get_submodule(lm.attr_of[node_id]), False
    consumer = next(d for d in lm.graph.outputs(node_id) if lm.graph.node(d).spec.module)
    return lm.model.get_submodule(lm.attr_of[consumer]), True


@pytest.mark.parametrize("example", sorted(EXAMPLE))
def test_grad_cam_equals_captum_at_every_block(example):
    lm = loaded(example)
    x = sample(lm)
    blocks = cam_blocks(lm.graph, lm.analysis)
    assert blocks
    for b in blocks:
        ours = grad_cam(lm.model, lm.graph, lm.attr_of, x, b.node_id, target=3, analysis=lm.analysis)
        layer, to_input = captum_layer(lm, b.node_id)
        ref = LayerGradCam(lm.model, layer).attribute(x, target=3, relu_attributions=True,
                                                      attribute_to_layer_input=to_input)
        close(ours.layer_map, ref[0, 0].detach())
        up = LayerAttribution.interpolate(ref, tuple(x.shape[-2:]), interpolate_mode="bilinear")
        close(ours.map, up[0, 0].detach())
        assert ours.map.dtype == np.float32 and ours.map.shape == tuple(x.shape[-2:])
        assert ours.target == 3 and ours.node_id == b.node_id


@pytest.mark.parametrize("example", sorted(EXAMPLE))
def test_saliency_and_smoothgrad_equal_captum(example):
    lm = loaded(example)
    x = sample(lm)
    ours = saliency(lm.model, x, target=2)
    ref = Saliency(lm.model).attribute(x.clone().requires_grad_(True), target=2, abs=True)
    close(ours.map, ref.amax(dim=1)[0])
    sg = smooth_grad(lm.model, x, target=2, samples=6, noise=0.2, seed=7, batch=6)
    torch.manual_seed(7)  # captum draws its noise from the global generator, in one call as we do
    sigma = 0.2 * float(x.max() - x.min())
    ref = NoiseTunnel(Saliency(lm.model)).attribute(x.clone().requires_grad_(True), nt_type="smoothgrad",
                                                    nt_samples=6, stdevs=sigma, target=2)
    close(sg.map, ref.amax(dim=1)[0])
    assert sg.map.shape == tuple(x.shape[-2:]) and sg.map.dtype == np.float32


def test_smoothgrad_batches_do_not_change_it_and_noise_zero_is_saliency():
    lm = loaded("mnist_cnn")
    x = sample(lm)
    a = smooth_grad(lm.model, x, target=1, samples=5, seed=3, batch=2).map
    b = smooth_grad(lm.model, x, target=1, samples=5, seed=3, batch=5).map
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(smooth_grad(lm.model, x, target=1, samples=3, noise=0.0).map,
                               saliency(lm.model, x, target=1).map, rtol=1e-5, atol=1e-8)
    assert not np.allclose(a, saliency(lm.model, x, target=1).map)


def test_in_place_blocks_do_not_corrupt_grad_cam_and_are_restored():
    g = Graph()
    i = g.add_node("Input", {"shape": [1, 12, 12]}).id
    c = g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3}, name="conv").id
    r = g.add_node("ReLU", {"inplace": True}).id
    f = g.add_node("Flatten").id
    fc = g.add_node("Linear", {"out_features": 3}).id
    for s, d in ((i, c), (c, r), (r, f), (f, fc)):
        g.connect(s, d)
    lm = build(g, seed=4)
    relu = lm.model.get_submodule(lm.attr_of[r])
    assert relu.inplace
    x = sample(lm)
    ours = grad_cam(lm.model, g, lm.attr_of, x, c, target=0)
    relu.inplace = False  # captum on the same model without the overwrite: the conv's own output
    ref = LayerGradCam(lm.model, lm.model.get_submodule(lm.attr_of[c])).attribute(x, target=0,
                                                                                 relu_attributions=True)
    relu.inplace = True
    close(ours.layer_map, ref[0, 0].detach())
    grad_cam(lm.model, g, lm.attr_of, x, c, target=0)
    assert relu.inplace and not lm.model.training


def test_default_block_is_the_last_convolution_or_where_the_last_ones_meet():
    def pick(example):
        g = load_project(EXAMPLE[example]).graph
        return g.node(default_cam_block(g)).label

    assert pick("mnist_cnn") == "conv2"
    assert pick("resnet_small") == "block2_add"  # the residual path and the shortcut both end here
    assert pick("inception_block") == "concat"
    lm = loaded("mnist_cnn")
    x = sample(lm)
    a = grad_cam(lm.model, lm.graph, lm.attr_of, x)
    assert a.node_id == lm.graph.find("conv2").id
    assert a.target == predict(lm.model, x).predicted  # default class: the predicted one


def test_bad_blocks_and_classes_are_refused_with_a_message():
    lm = loaded("mnist_cnn")
    g = lm.graph
    with pytest.raises(ExplainError, match=r"Grad-CAM cannot look at fc1 \(Linear\): its output is 10, not a "
                                           r"C×H×W feature map\. Choose one of: conv1, relu1"):
        find_cam_block(g, "fc1")
    with pytest.raises(ExplainError, match="no block named 'nope'; Grad-CAM can look at: conv1"):
        find_cam_block(g, "nope")
    with pytest.raises(ExplainError, match="model's input"):
        find_cam_block(g, "input")
    assert find_cam_block(g, "conv1") == g.find("conv1").id
    x = sample(lm)
    for bad in (10, -1):
        with pytest.raises(ExplainError, match=r"class .* is out of range: the model has 10 classes \(0–9\)"):
            grad_cam(lm.model, g, lm.attr_of, x, target=bad)
        with pytest.raises(ExplainError, match="out of range"):
            saliency(lm.model, x, target=bad)
    with pytest.raises(ExplainError, match="at least one sample"):
        smooth_grad(lm.model, x, samples=0)


def test_models_that_do_not_classify_are_refused():
    g = Graph()
    i = g.add_node("Input", {"shape": [1, 8, 8]}).id
    c = g.add_node("Conv2d", {"out_channels": 2}).id
    g.connect(i, c)
    lm = build(g)
    x = sample(lm)
    with pytest.raises(ModelError, match="one score per class, but its output is 2×6×6"):
        predict(lm.model, x)
    with pytest.raises(ModelError, match="one score per class"):
        saliency(lm.model, x)


def _import_exported(path):
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("example", ["mnist_cnn", "resnet_small", "inception_block"])
def test_probabilities_equal_the_exported_model_on_the_same_tensor(example, tmp_path):
    project = load_project(EXAMPLE[example])
    torch.manual_seed(5)
    trained = build(project.graph, seed=5).model
    py, pt, sf = export_weights(trained, project.graph, tmp_path, class_name="Net")
    x = sample(build(project.graph), seed=9)
    for weights in (pt, sf):
        lm = build(project.graph, weights=weights)
        ours = predict(lm.model, x.numpy(), top=3)
        exported = _import_exported(py).Net()
        exported.load_state_dict(torch.load(pt, weights_only=True))
        exported.eval()
        with torch.no_grad():
            want = torch.softmax(exported(x).double(), dim=1)[0].numpy()
        np.testing.assert_allclose(ours.probabilities, want, rtol=1e-5, atol=1e-7)
        assert [r.index for r in ours.top] == list(np.argsort(-want, kind="stable")[:3])
        assert abs(float(ours.probabilities.sum()) - 1) < 1e-5


@pytest.mark.parametrize("last, kind", [("Softmax", PROBS), ("LogSoftmax", LOG_PROBS)])
def test_models_ending_in_softmax_give_their_own_probabilities(last, kind):
    g = Graph()
    i = g.add_node("Input", {"shape": [1, 6, 6]}).id
    f = g.add_node("Flatten").id
    fc = g.add_node("Linear", {"out_features": 4}).id
    s = g.add_node(last, {"dim": 1}).id
    for a, b in ((i, f), (f, fc), (fc, s)):
        g.connect(a, b)
    lm = build(g, seed=2)
    assert lm.output == kind
    x = sample(lm)
    p = predict(lm.model, x, output=lm.output).probabilities
    with torch.no_grad():
        logits = lm.model.get_submodule(lm.attr_of[fc])(lm.model.get_submodule(lm.attr_of[f])(x))
    np.testing.assert_allclose(p, torch.softmax(logits.double(), 1)[0].numpy(), rtol=1e-5, atol=1e-7)


def test_checkpoints_load_and_bring_their_settings(tmp_path):
    from cnnbuilder.core.training.config import TrainConfig
    from cnnbuilder.core.training.engine import Trainer

    project = load_project(EXAMPLE["mnist_cnn"])
    cfg = TrainConfig(epochs=1, shapes_train=64, shapes_test=20, batch_size=32, device="cpu", log_interval=0,
                      feature_interval=0, seed=3)
    trainer = Trainer(project.graph, cfg)
    for _ in trainer.run():
        pass
    path = trainer.save_checkpoint(tmp_path / "run.ckpt")
    lm = build(project.graph, weights=path)
    assert lm.config is not None and lm.config["shapes_train"] == 64
    x = sample(lm)
    with torch.no_grad():
        want = torch.softmax(trainer.model.cpu().eval()(x).double(), 1)[0].numpy()
    np.testing.assert_allclose(predict(lm.model, x).probabilities, want, rtol=1e-5, atol=1e-7)


def test_weights_that_do_not_fit_or_are_not_weights_are_refused(tmp_path):
    small = load_project(EXAMPLE["mnist_cnn"]).graph
    other = load_project(EXAMPLE["lenet5"]).graph
    _, pt, _ = export_weights(build(other).model, other, tmp_path)
    with pytest.raises(ModelError, match=r"model\.pt: the weights belong to a different model") as err:
        build(small, weights=pt)
    assert not err.value.unreadable
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ModelError, match=r"notes\.pt: not a weights file") as err:
        build(small, weights=text)
    assert err.value.unreadable
    with pytest.raises(ModelError, match="no such weights file"):
        build(small, weights=tmp_path / "missing.pt")


def test_explain_image_end_to_end_and_the_overlay(tmp_path):
    lm = loaded("mnist_cnn")
    prep = Preprocessing((1, 28, 28), (0.25,), (0.27,), class_names=tuple("abcdefghij"))
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
    e = explain_image(lm, prep, path, "gradcam", block="conv1", target=4)
    assert e.attribution.node_id == lm.graph.find("conv1").id and e.target_name == "e"
    img = prepare_image(path, prep)
    np.testing.assert_array_equal(e.image.x, img.x)
    again = grad_cam(lm.model, lm.graph, lm.attr_of, img.x, lm.graph.find("conv1").id, 4)
    np.testing.assert_array_equal(e.attribution.map, again.map)
    assert e.prediction.top[0].name in "abcdefghij"
    with pytest.raises(ExplainError, match="unknown method"):
        explain_image(lm, prep, path, "lime")
    with pytest.raises(ModelError, match="takes 1×28×28 images, not 3×28×28"):
        explain_image(lm, Preprocessing((3, 28, 28)), path, None)

    heat = e.attribution.map
    out = overlay(e.image.display, heat, opacity=0.0)
    assert out.shape == (224, 224, 3)  # 28 px enlarged 8 times, pixels kept square
    np.testing.assert_array_equal(out[::8, ::8], e.image.display)
    np.testing.assert_array_equal(overlay(e.image.display, heat, 1.0, min_side=1), colorize(heat))
    hot = np.unravel_index(np.argmax(heat), heat.shape)
    assert tuple(colorize(heat)[hot]) == (128, 0, 0)  # the peak is dark red, as in jet
    png = tmp_path / "ov.png"
    save_png(out, png)
    with Image.open(png) as im:
        assert im.size == (224, 224) and im.mode == "RGB"
    save_npy(heat, tmp_path / "m.npy")
    back = np.load(tmp_path / "m.npy")
    assert back.dtype == np.float32 and np.array_equal(back, heat)
    with pytest.raises(ExplainError, match="cannot write the picture"):
        save_png(out, tmp_path)  # a folder
    with pytest.raises(ExplainError, match="differ in size"):
        overlay(e.image.display, heat[:5])
    assert colorize(np.zeros((3, 3))).tolist() == colorize(np.full((3, 3), np.nan)).tolist()


_WEIGHTS = {}


def _valid_weights(tmp_path_factory):
    if not _WEIGHTS:
        graph = load_project(EXAMPLE["mnist_cnn"]).graph
        d = tmp_path_factory.mktemp("w")
        _, pt, st = export_weights(build(graph).model, graph, d)
        _WEIGHTS.update(graph=graph, pt=pt.read_bytes(), st=st.read_bytes())
    return _WEIGHTS


@given(seed=st.integers(0, 2**32), kind=st.sampled_from(["pt", "safetensors"]), rounds=st.integers(1, 3))
@fuzz_settings(default=40, long=1000)
def test_damaged_weights_files_load_or_are_refused_with_a_message(tmp_path_factory, seed, kind, rounds):
    w = _valid_weights(tmp_path_factory)
    r = random.Random(seed)
    raw = w["pt" if kind == "pt" else "st"]
    for _ in range(rounds):
        raw = mutate_bytes(raw, r)
    path = tmp_path_factory.mktemp("bad") / f"model.{kind}"
    path.write_bytes(raw)
    try:
        lm = build(w["graph"], weights=path)
    except ModelError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert lm.model is not None


def test_a_worker_builds_from_plain_data_and_the_live_model_is_wrapped_untouched(tmp_path):
    from cnnbuilder.core.inspect.predict import build_from_data, wrap
    from cnnbuilder.core.project import graph_to_dict

    graph = load_project(EXAMPLE["resnet_small"]).graph
    live = build(graph, seed=8).model.train()
    live.get_submodule("relu1").inplace = True
    state = {k: v.numpy().copy() for k, v in live.state_dict().items()}
    worker = build_from_data(graph_to_dict(graph), state)
    x = sample(worker)
    wrapped = wrap(live, graph)
    a = grad_cam(worker.model, worker.graph, worker.attr_of, x, target=1)
    b = grad_cam(wrapped.model, wrapped.graph, wrapped.attr_of, x, target=1)
    np.testing.assert_allclose(a.map, b.map, rtol=1e-5, atol=1e-7)
    assert live.training and live.get_submodule("relu1").inplace  # as it was
    with pytest.raises(ModelError, match="graph"):
        build_from_data({"nodes": "x"})
