"""Checkpoints resume runs exactly; exported weights load back into the exported code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnbuilder.core.project import load_project
from cnnbuilder.core.training.checkpoint import CheckpointError, load_checkpoint
from cnnbuilder.core.training.config import TrainConfig
from cnnbuilder.core.training.engine import TrainControl, Trainer
from cnnbuilder.core.training.events import BatchMetrics, Cancelled, CheckpointSaved, EpochMetrics, Failed, Finished

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
# Augmentation and dropout both draw random numbers: resuming must replay them exactly.
CFG = TrainConfig(shapes_train=800, shapes_test=160, val_split=0.1, batch_size=32, epochs=3, lr=0.002,
                  scheduler="onecycle", hflip=True, crop_padding=2, log_interval=0.0)


def graph_with_dropout():
    g = load_project(EXAMPLES / "mnist_cnn.json").graph
    fc = next(n for n in g if n.type == "Linear")
    flat = g.inputs(fc.id)[0]
    g.disconnect(flat, fc.id)
    drop = g.add_node("Dropout", {"p": 0.3})
    g.connect(flat, drop.id)
    g.connect(drop.id, fc.id)
    return g


def metrics(events) -> list[float]:
    return [float(v) for e in events if isinstance(e, EpochMetrics)
            for v in (e.epoch, e.step, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.lr)]


def test_resume_at_an_epoch_boundary_reproduces_the_uninterrupted_run(tmp_path):
    g = graph_with_dropout()
    full = list(Trainer(g, CFG).run())
    assert isinstance(full[-1], Finished)

    # The one-cycle schedule spans all planned epochs, so stop after epoch 1 instead of shortening.
    control = TrainControl()
    first = Trainer(g, CFG, control=control)
    part = []
    for ev in first.run():
        part.append(ev)
        if isinstance(ev, EpochMetrics) and ev.epoch == 1:
            control.stop()
    assert isinstance(part[-1], Cancelled)
    path = first.save_checkpoint(tmp_path / "run.ckpt")

    rest = list(Trainer(g, CFG, resume=path).run())
    assert isinstance(rest[-1], Finished)
    assert metrics(part) + metrics(rest) == pytest.approx(metrics(full), rel=1e-6, abs=1e-7)
    assert rest[-1].test_acc == pytest.approx(full[-1].test_acc)
    assert np.array_equal(rest[-1].confusion, full[-1].confusion)
    # The resumed run carries the whole curve, not just its own half.
    assert rest[-1].history["step"] == full[-1].history["step"]
    assert rest[-1].history["loss"] == pytest.approx(full[-1].history["loss"], rel=1e-6)


def test_resume_mid_epoch_reproduces_the_uninterrupted_run(tmp_path):
    g = graph_with_dropout()
    cfg = CFG.replace(epochs=2)
    full = list(Trainer(g, cfg).run())
    control = TrainControl()
    trainer = Trainer(g, cfg, control=control)
    for ev in trainer.run():
        if isinstance(ev, BatchMetrics) and ev.step == 30:  # epoch 2, batch 7 of 23
            control.request_checkpoint(tmp_path / "mid.ckpt")
        if isinstance(ev, CheckpointSaved):
            assert ev.step == 30
            control.stop()
    assert (tmp_path / "mid.ckpt").exists()
    rest = list(Trainer(g, cfg, resume=tmp_path / "mid.ckpt").run())
    assert metrics(rest) == pytest.approx(metrics(full)[7:], rel=1e-6, abs=1e-7)  # epoch 2 only
    assert rest[-1].test_loss == pytest.approx(full[-1].test_loss, rel=1e-6)


def test_checkpoint_contents_load_with_weights_only(tmp_path):
    trainer = Trainer(load_project(EXAMPLES / "mnist_cnn.json").graph, CFG.replace(epochs=1))
    assert isinstance(list(trainer.run())[-1], Finished)
    path = trainer.save_checkpoint(tmp_path / "a" / "b.ckpt")
    raw = torch.load(path, weights_only=True)  # no pickled code anywhere in it
    for key in ("model", "optimizer", "scheduler", "epoch", "step", "rng", "config", "history", "graph"):
        assert key in raw
    assert set(raw["rng"]) == {"torch", "numpy", "python", "cuda"}
    assert raw["epoch"] == 1 and raw["step"] == 23 and raw["config"]["hflip"] is True
    assert load_checkpoint(path)["format"] == "cnnbuilder-checkpoint"


def test_bad_checkpoints_are_messages(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.ckpt")
    bare = tmp_path / "bare.pt"
    torch.save({"w": torch.zeros(2)}, bare)
    with pytest.raises(CheckpointError, match="not a cnnbuilder checkpoint"):
        load_checkpoint(bare)

    trainer = Trainer(load_project(EXAMPLES / "mnist_cnn.json").graph, CFG.replace(epochs=1))
    list(trainer.run())
    path = trainer.save_checkpoint(tmp_path / "mnist.ckpt")
    other = load_project(EXAMPLES / "lenet5.json").graph
    fail = list(Trainer(other, CFG, resume=path).run())[-1]
    assert isinstance(fail, Failed) and "different model" in fail.message
    fail = list(Trainer(other, CFG, resume=junk).run())[-1]
    assert isinstance(fail, Failed) and "damaged" in fail.message


def test_exported_weights_load_into_the_exported_code(tmp_path):
    from safetensors.torch import load_file

    g = load_project(EXAMPLES / "resnet_small.json").graph  # branches and BatchNorm buffers
    trainer = Trainer(g, CFG.replace(shapes_channels=3, shapes_size=32, shapes_train=200, epochs=1))
    assert isinstance(list(trainer.run())[-1], Finished)
    py, pt, st = trainer.export_weights(tmp_path / "export", stem="resnet", class_name="SmallResNet")
    assert (py.name, pt.name, st.name) == ("resnet.py", "resnet.pt", "resnet.safetensors")

    spec = importlib.util.spec_from_file_location("exported_resnet", py)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["exported_resnet"] = mod
    try:
        spec.loader.exec_module(mod)
        net = mod.SmallResNet()
        net.load_state_dict(torch.load(pt, weights_only=True))  # strict: every key matches
        net.eval()
        trainer.model.eval()
        x = torch.randn(4, 3, 32, 32)
        with torch.no_grad():
            assert torch.allclose(net(x), trainer.model(x.contiguous(memory_format=torch.channels_last)), atol=1e-5)
        net2 = mod.SmallResNet()
        net2.load_state_dict(load_file(str(st)))
        for a, b in zip(net.state_dict().values(), net2.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    finally:
        sys.modules.pop("exported_resnet", None)


def test_nothing_to_save_before_the_model_exists(tmp_path):
    trainer = Trainer(load_project(EXAMPLES / "mnist_cnn.json").graph, CFG)
    with pytest.raises(CheckpointError, match="not been built"):
        trainer.save_checkpoint(tmp_path / "x.ckpt")
    with pytest.raises(CheckpointError, match="not been built"):
        trainer.export_weights(tmp_path)


def test_a_grouped_model_checkpoints_and_resumes(tmp_path):
    """The checkpoint keeps the graph as a project file does, groups included (format 4): a run of a
    grouped model resumes, and a graph entry that is neither nodes, edges nor groups is still damage."""
    from cnnbuilder.core.training.checkpoint import CHECKSUM, digest, validate

    g = graph_with_dropout()
    convs = [n.id for n in g if n.type in ("Conv2d", "ReLU", "MaxPool2d")][:3]
    g.add_group("stem", convs, cls="Stem")
    cfg = TrainConfig.from_dict({**CFG.to_dict(), "epochs": 1})
    control = TrainControl()
    first = Trainer(g, cfg, control=control)
    for ev in first.run():
        if isinstance(ev, BatchMetrics):
            control.stop()
    path = first.save_checkpoint(tmp_path / "run.ckpt")
    data = load_checkpoint(path)
    assert data["graph"]["groups"][0]["name"] == "stem"
    rest = list(Trainer(g, cfg, resume=path).run())
    assert isinstance(rest[-1], Finished)
    data["graph"]["groupz"] = []
    data[CHECKSUM] = digest(data)  # crafted, not corrupted: the checksum fits
    with pytest.raises(CheckpointError, match="graph has an unexpected entry 'groupz'"):
        validate(data, "run.ckpt")
