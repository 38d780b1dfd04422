"""Looking inside a run (core.training.inspect_run): per-test-image predictions kept by the test
pass and in run records, the mistakes selections, activation statistics with dead units, and the
augmentation preview (the training kernels, bad settings as messages)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnbuilder.core import runs
from cnnbuilder.core.codegen import generate, instantiate
from cnnbuilder.core.project import load_project
from cnnbuilder.core.training import inspect_run as ir
from cnnbuilder.core.training.augment import BatchTransform
from cnnbuilder.core.training.config import TrainConfig
from cnnbuilder.core.training.data import load_data
from cnnbuilder.core.training.engine import Trainer
from cnnbuilder.core.training.events import Activations, AugmentPreview, Finished, TestImages

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
SMALL = TrainConfig(shapes_train=640, shapes_test=128, val_split=0.1, batch_size=32, epochs=1, lr=0.002)


def graph(name: str = "mnist_cnn"):
    return load_project(EXAMPLES / f"{name}.json").graph


@pytest.fixture(scope="module")
def finished_run():
    t = Trainer(graph(), SMALL)
    events = list(t.run())
    return t, events


def test_test_pass_keeps_each_images_prediction_consistent_with_the_confusion_matrix(finished_run):
    trainer, events = finished_run
    done = events[-1]
    assert isinstance(done, Finished)
    assert done.test_true.dtype == np.int64 and done.test_pred.dtype == np.int64 and done.test_prob.dtype == np.float32
    assert len(done.test_true) == 128
    cm = np.zeros_like(done.confusion)
    np.add.at(cm, (done.test_true, done.test_pred), 1)
    assert (cm == done.confusion).all()
    assert ((done.test_prob > 0) & (done.test_prob <= 1)).all()
    # the probability is the softmax of the model's output at the predicted class
    bundle = trainer.bundle
    assert (done.test_true == bundle.test.y.numpy()).all()
    t = BatchTransform(trainer.config, bundle.mean, bundle.std, 1, "cpu")
    trainer.model.eval()
    with torch.no_grad():
        p = trainer.model(t(bundle.test.x[:8])).softmax(1)
    assert np.allclose(p.max(1).values.numpy(), done.test_prob[:8], atol=1e-5)
    assert (p.argmax(1).numpy() == done.test_pred[:8]).all()


def test_cell_and_confident_mistake_selections():
    tp = ir.predictions([0, 0, 1, 1, 2, 2, 0], [0, 1, 1, 0, 1, 1, 1], [0.9, 0.6, 0.8, 0.95, 0.7, 0.99, 0.5])
    assert ir.cell_indices(tp, 0, 1).tolist() == [1, 6]  # most confident first
    assert ir.cell_indices(tp, 2, 1).tolist() == [5, 4]
    assert ir.cell_indices(tp, 2, 2).tolist() == []
    assert ir.confident_mistakes(tp).tolist() == [5, 3, 4, 1, 6]
    assert ir.confident_mistakes(tp, limit=2).tolist() == [5, 3]
    with pytest.raises(ir.InspectError, match="true class 7"):
        ir.cell_indices(tp, 7, 0, num_classes=3)
    with pytest.raises(ir.InspectError, match="true class '1'"):
        ir.cell_indices(tp, "1", 0)
    with pytest.raises(ir.InspectError, match="predicted class -1"):
        ir.cell_indices(tp, 0, -1)
    with pytest.raises(ir.InspectError, match="disagree in length"):
        ir.predictions([0, 1], [0], [0.5])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.floats(0, 1)), max_size=60))
def test_selections_partition_the_mistakes(rows):
    tp = ir.predictions(*zip(*rows, strict=False)) if rows else ir.predictions([], [], [])
    wrong = ir.confident_mistakes(tp, limit=10_000)
    cells = [ir.cell_indices(tp, i, j, limit=10_000) for i in range(5) for j in range(5) if i != j] if rows else []
    assert sorted(wrong.tolist()) == sorted(i for c in cells for i in c.tolist())
    assert all(tp.prob[a] >= tp.prob[b] for a, b in zip(wrong[:-1], wrong[1:], strict=False))


def test_run_record_keeps_predictions_and_rejects_damaged_ones(finished_run, tmp_path):
    trainer, events = finished_run
    rec = runs.record_from_trainer(trainer, run_id="r1", name="r", project="p", created=runs.now_iso(),
                                   seconds=1.0, status="finished")
    store = runs.RunStore(tmp_path)
    store.write(rec)
    back = runs.read_run(store.run_dir("r1"))
    done = events[-1]
    assert (back.predictions.true == done.test_true).all() and (back.predictions.pred == done.test_pred).all()
    assert np.allclose(back.predictions.prob, done.test_prob, atol=1e-4)
    data = rec.to_dict()
    for bad in ({"true": [0], "pred": [0, 1], "prob": [0.5, 0.5]}, {"true": [99], "pred": [0], "prob": [0.5]},
                {"true": [0], "pred": [0], "prob": [1.5]}, [1, 2, 3], {"true": "x", "pred": [], "prob": []}):
        with pytest.raises(runs.RunError, match="test_predictions"):
            runs.record_from_dict({**data, "test_predictions": bad}, "run.json")
    old = dict(data)
    old.pop("test_predictions")
    assert runs.record_from_dict(old, "run.json").predictions is None  # an older record still reads


def test_test_images_are_served_by_index_and_checked(finished_run):
    trainer, _ = finished_run
    cfg = trainer.config.to_dict()
    ev, bundle = ir.serve_images(ir.ImagesRequest(3, cfg, (5, 0, 7)), trainer.bundle)
    assert isinstance(ev, TestImages) and ev.run_id == 3 and not ev.message
    assert ev.images.dtype == np.uint8 and ev.images.shape == (3, 1, 28, 28)
    assert (ev.images[1] == trainer.bundle.test.x[0].numpy()).all() and bundle is trainer.bundle
    ev, _ = ir.serve_images(ir.ImagesRequest(4, cfg, (500,)), trainer.bundle)
    assert "test image 500 does not exist" in ev.message and "128 images" in ev.message
    labels = tuple(int(v) for v in trainer.bundle.test.y[:2])
    wrong = tuple((v + 1) % 10 for v in labels)
    ev, _ = ir.serve_images(ir.ImagesRequest(5, cfg, (0, 1), wrong), trainer.bundle)
    assert "data changed" in ev.message
    ev, _ = ir.serve_images(ir.ImagesRequest(5, cfg, (0, 1), labels), trainer.bundle)
    assert not ev.message
    ev, _ = ir.serve_images(ir.ImagesRequest(6, {**cfg, "batch_size": -3}, (0,)), None)
    assert ev.message.startswith("cannot show the test images") and "batch_size" in ev.message


def test_activations_are_sent_a_few_times_an_epoch(finished_run):
    _, events = finished_run
    acts = [e for e in events if isinstance(e, Activations)]
    started = next(e for e in events if type(e).__name__ == "Started")
    assert acts[0].step == 0 and acts[-1].step == started.total_steps
    assert len(acts) == 2 + ir.PROBES_PER_EPOCH  # before training, 4 per epoch, and the epoch's last step
    g = graph()
    ev = acts[-1]
    assert set(ev.node_ids) <= {n.id for n in g} and len(ev.node_ids) == len(ev.mean) == len(ev.dead)
    types = {n.id: n.type for n in g}
    for nid, d in zip(ev.node_ids, ev.dead, strict=True):
        assert (types[nid] in ir.DEAD_TYPES) == (not math.isnan(d))
        assert math.isnan(d) or 0 <= d <= 1


def test_dead_units_are_counted_after_relu_only_and_batchnorm_is_untouched():
    from cnnbuilder.core.graph import Graph

    g = Graph()
    a = g.add_node("Input", {"shape": (1, 4, 4)})
    b = g.add_node("Flatten", {})
    c = g.add_node("Linear", {"in_features": 16, "out_features": 8})
    d = g.add_node("ReLU", {})
    e = g.add_node("LeakyReLU", {})
    for x, y in ((a, b), (b, c), (c, d), (d, e)):
        g.connect(x.id, y.id)
    gen = generate(g)
    torch.manual_seed(0)
    model = instantiate(gen)
    lin = model.get_submodule(gen.attr_of[c.id])
    with torch.no_grad():  # units 0..5 never fire (weights 0, bias -1); units 6, 7 always do
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([-1.0] * 6 + [1.0, 2.0]))
    model.train()
    stats = {s.node_id: s for s in ir.activation_stats(model, g, gen.attr_of, torch.randn(5, 1, 4, 4))}
    assert model.training  # restored
    assert stats[d.id].dead == pytest.approx(6 / 8)
    assert math.isnan(stats[e.id].dead) and math.isnan(stats[c.id].dead)
    assert stats[d.id].mean == pytest.approx(3 / 8)


def test_history_warns_when_more_than_half_are_dead():
    h = ir.ActivationHistory()
    mk = lambda rid, step, dead: Activations(rid, step, 1, ("a", "b"), np.array([0.1, 0.2], np.float32),
                                             np.ones(2, np.float32), np.array([dead, np.nan], np.float32))
    h.add(mk(1, 0, 0.2))
    h.add(mk(1, 4, 0.6))
    h.add(mk(1, 4, 0.7))  # the same step again replaces it
    steps, mean, _std, dead = h.series("a")
    assert steps.tolist() == [0, 4] and dead.tolist() == pytest.approx([0.2, 0.7])
    assert h.dying() == [("a", pytest.approx(0.7))] and "b" in h and "c" not in h
    h.add(mk(2, 0, 0.5))  # a new run starts afresh; exactly half is not "more than half"
    assert h.series("a")[0].tolist() == [0] and h.dying() == []


def test_augment_preview_uses_the_training_kernels():
    cfg = SMALL.replace(rotation=30.0, crop_padding=4)
    bundle = load_data(cfg)
    out = ir.augment_preview(cfg, bundle, seed=3)
    assert out.dtype == np.uint8 and out.shape == (16, 1, 28, 28)
    t = BatchTransform(cfg, bundle.mean, bundle.std, 1, "cpu")
    g = torch.Generator()
    g.manual_seed(3)
    ref = (t.augment(bundle.train.x[:16], g) * 255).round().to(torch.uint8).numpy()
    assert (out == ref).all()
    assert (out != bundle.train.x[:16].numpy()).any()
    assert not (ir.augment_preview(cfg, bundle, seed=4) == out).all()  # another seed, other draws
    plain = ir.augment_preview(SMALL, bundle)
    assert (plain == bundle.train.x[:16].numpy()).all()  # no augmentation: the images as loaded


def test_augment_preview_bad_settings_are_messages():
    ev, _ = ir.serve_preview(ir.PreviewRequest(1, {**SMALL.to_dict(), "rotation": "lots"}))
    assert isinstance(ev, AugmentPreview) and ev.run_id == 1 and ev.images.size == 0
    assert ev.message.startswith("no preview") and "rotation" in ev.message
    ev, _ = ir.serve_preview(ir.PreviewRequest(2, {**SMALL.to_dict(), "dataset": "folder",
                                                   "data_root": "/nonexistent/x"}))
    assert ev.message.startswith("no preview") and "/nonexistent/x" in ev.message
    ev, bundle = ir.serve_preview(ir.PreviewRequest(3, {**SMALL.to_dict(), "hflip": True}))
    assert not ev.message and ev.images.shape == (16, 1, 28, 28) and bundle is not None


def test_events_are_plain_data(finished_run):
    _, events = finished_run
    for e in events:
        for f in dataclasses.fields(e):
            assert not isinstance(getattr(e, f.name), torch.Tensor)
