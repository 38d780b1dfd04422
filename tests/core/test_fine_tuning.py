"""Fine-tuning: a run whose `init_weights` names a per-block weights file starts from those weights
(its first batch's loss is that of a model holding them), a block whose tensor no longer fits is
skipped with the reason while the rest load, and a missing, foreign or damaged file stops the run
before training with a message naming the file: never a traceback, never code from the file."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core.codegen import generate, instantiate
from cnnbuilder.core.training import engine, node_weights
from cnnbuilder.core.training.config import (
    ConfigError,
    TrainConfig,
    project_relative,
    rebase_paths,
    resolve_project_path,
)
from cnnbuilder.core.training.engine import TrainControl, Trainer
from cnnbuilder.core.training.events import BatchMetrics, Failed, Finished, Notice, Started

from ..fuzz import fuzz_settings
from .tiny_training import tiny_graph

CFG = TrainConfig(shapes_train=200, shapes_test=40, shapes_size=16, val_split=0.1, batch_size=64, epochs=1,
                  lr=0.01, log_interval=0.0, device="cpu", seed=0)


def weights_of(graph, seed: int) -> tuple[dict, dict]:
    """(per-block tensors, the model's state_dict) of a model of `graph` initialised with `seed`."""
    torch.manual_seed(seed)
    gen = generate(graph)
    model = instantiate(gen)
    blocks = {nid: model.get_submodule(path).state_dict() for nid, path in gen.attr_of.items()
              if model.get_submodule(path).state_dict()}
    return blocks, {k: v.clone() for k, v in model.state_dict().items()}


def first_loss(events) -> float:
    return float(next(e for e in events if isinstance(e, BatchMetrics)).losses[0])


def test_a_run_starts_from_the_weights_file(tmp_path, monkeypatch):
    g = tiny_graph()
    blocks, state = weights_of(g, seed=99)
    path = tmp_path / "w.pt"
    node_weights.save(path, blocks)

    # Stopped as soon as it started: the model holds exactly the file's tensors, not the seed's.
    control = TrainControl()
    trainer = Trainer(g, CFG.replace(init_weights=str(path)), control=control)
    events = []
    for ev in trainer.run():
        events.append(ev)
        if isinstance(ev, Started):
            got = trainer.model.state_dict()
            assert all(torch.equal(got[k], v) for k, v in state.items() if k in got)
            random_init = weights_of(g, seed=CFG.seed)[1]
            assert not all(torch.equal(got[k], random_init[k]) for k in random_init)
            control.stop()
    note = next(e.message for e in events if isinstance(e, Notice) and "w.pt" in e.message)
    assert note == f"started from w.pt: loaded {sum(len(sd) for sd in blocks.values())} of " \
                   f"{sum(len(sd) for sd in blocks.values())} weight tensors"

    # The first batch's loss is that of the same run with a model that holds those weights.
    tuned = list(Trainer(g, CFG.replace(init_weights=str(path))).run())
    assert isinstance(tuned[-1], Finished)
    real = engine.instantiate

    def holding_the_weights(gen):
        model = real(gen)
        model.load_state_dict(state)
        return model

    monkeypatch.setattr(engine, "instantiate", holding_the_weights)
    reference = list(Trainer(g, CFG).run())
    assert first_loss(tuned) == first_loss(reference)
    monkeypatch.setattr(engine, "instantiate", real)
    assert first_loss(list(Trainer(g, CFG).run())) != first_loss(tuned)  # the file made the difference


def test_a_changed_classifier_is_skipped_with_the_reason_and_the_rest_loads(tmp_path):
    old = tiny_graph()
    linear = next(n.id for n in old if n.type == "Linear")
    old.set_param(linear, "out_features", 5)  # the weights came from a 5-class model
    blocks, state = weights_of(old, seed=3)
    path = tmp_path / "five.pt"
    node_weights.save(path, blocks)

    new = tiny_graph()  # the same blocks, 10 classes now
    control = TrainControl()
    trainer = Trainer(new, CFG.replace(init_weights=str(path)), control=control)
    events = []
    for ev in trainer.run():
        events.append(ev)
        if isinstance(ev, Started):
            gen = generate(new)
            for nid, sd in blocks.items():
                module = trainer.model.get_submodule(gen.attr_of[nid])
                for key, tensor in sd.items():
                    if nid == linear:
                        assert getattr(module, key).shape != tensor.shape
                    else:
                        assert torch.equal(module.state_dict()[key], tensor)
            control.stop()
    total = sum(len(sd) for sd in blocks.values())
    label = new.node(linear).label
    note = next(e.message for e in events if isinstance(e, Notice) and "five.pt" in e.message)
    assert note.startswith(f"started from five.pt: loaded {total - 2} of {total} weight tensors; skipped 2: ")
    assert f"{label}.weight has shape (10, 392), the file (5, 392)" in note and f"{label}.bias" in note


def test_a_relative_setting_is_the_project_folders_and_resume_ignores_it(tmp_path):
    g = tiny_graph()
    (tmp_path / "proj").mkdir()
    node_weights.save(tmp_path / "proj" / "w.pt", weights_of(g, 1)[0])
    cfg = CFG.replace(init_weights="w.pt", epochs=1)
    events = list(Trainer(g, cfg, project_file=tmp_path / "proj" / "p.json").run())
    assert isinstance(events[-1], Finished)
    assert any(isinstance(e, Notice) and e.message.startswith("started from w.pt: loaded") for e in events)
    # Without the project's folder the same setting names a file that is not there.
    failed = list(Trainer(g, cfg, project_file=tmp_path / "elsewhere.json").run())[-1]
    assert isinstance(failed, Failed) and failed.kind == "weights"
    assert failed.message == f"{tmp_path / 'w.pt'}: no such file"


def test_missing_and_foreign_files_stop_before_training(tmp_path):
    g = tiny_graph()
    foreign = tmp_path / "state_dict.pt"
    torch.save(weights_of(g, 0)[1], foreign)  # a plain state_dict is not a per-block file
    unrelated = tmp_path / "other.pt"
    node_weights.save(unrelated, {"n999": {"weight": torch.zeros(3)}})
    for path, message in ((tmp_path / "none.pt", f"{tmp_path / 'none.pt'}: no such file"),
                          (tmp_path, f"{tmp_path}: is a folder, not a weights file"),
                          (foreign, f"{foreign}: not a cnnbuilder weights file (made by File ▸ Import with weights)"),
                          (unrelated, f"{unrelated}: none of its weights fit this model (loaded 0 of 1 weight "
                                      "tensors; skipped 1: block n999 is no longer in the model)")):
        events = list(Trainer(g, CFG.replace(init_weights=str(path))).run())
        end = events[-1]
        assert isinstance(end, Failed) and end.kind == "weights", end
        assert end.message.startswith(message) and not end.details
        assert not any(isinstance(e, (Started, BatchMetrics)) for e in events)


class _Marker:
    """Unpickled without weights_only, this would create a file: proof of code execution."""

    def __init__(self, where: str):
        self.where = where

    def __reduce__(self):
        return (open, (self.where, "w"))


def test_a_file_that_carries_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran.txt"
    path = tmp_path / "evil.pt"
    torch.save({"format": node_weights.FORMAT, "version": node_weights.VERSION,
                "blocks": {"n1": {"weight": _Marker(str(marker))}}}, path)
    end = list(Trainer(tiny_graph(), CFG.replace(init_weights=str(path))).run())[-1]
    assert isinstance(end, Failed) and end.kind == "weights"
    assert end.message.startswith(f"{path}: not a weights file that can be read safely")
    assert not marker.exists()


_GOOD = io.BytesIO()


def _good_bytes() -> bytes:
    if not _GOOD.getvalue():
        torch.save({"format": node_weights.FORMAT, "version": node_weights.VERSION,
                    "blocks": weights_of(tiny_graph(), 0)[0]}, _GOOD)
    return _GOOD.getvalue()


@fuzz_settings(60, 2000)
@given(data=st.data())
def test_damaged_bytes_are_refused_with_a_message_or_read_as_tensors(tmp_path_factory, data):
    raw = bytearray(_good_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del raw[at:at + data.draw(st.integers(1, 64))]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        if not raw:
            break
    path = tmp_path_factory.mktemp("w") / "damaged.pt"
    path.write_bytes(bytes(raw))
    try:
        blocks = node_weights.load(path)
    except node_weights.WeightsError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
    else:  # the damage hit tensor data only: still named tensors, applied or skipped by shape
        done = node_weights.apply(instantiate(generate(tiny_graph())), tiny_graph(),
                                  generate(tiny_graph()).attr_of, blocks)
        assert done.loaded + len(done.skipped) >= 1


def test_one_damaged_file_through_the_engine(tmp_path):
    raw = _good_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(raw[: len(raw) // 2])
    end = list(Trainer(tiny_graph(), CFG.replace(init_weights=str(path))).run())[-1]
    assert isinstance(end, Failed) and end.kind == "weights"
    assert end.message.startswith(f"{path}: not a weights file that can be read safely") and not end.details


# -- where the setting points -------------------------------------------------------------------------------
def test_paths_are_kept_relative_to_the_project_folder_when_inside_it(tmp_path):
    project = tmp_path / "a" / "p.json"
    inside, outside = tmp_path / "a" / "w" / "x.pt", tmp_path / "b" / "x.pt"
    assert project_relative(inside, project) == os.path.join("w", "x.pt")
    assert project_relative(outside, project) == str(outside)
    assert project_relative(inside, None) == str(inside)  # an untitled project has no folder
    assert project_relative("", project) == ""
    assert resolve_project_path(os.path.join("w", "x.pt"), project) == str(inside)
    assert resolve_project_path(str(outside), project) == str(outside)
    # Saved elsewhere: the setting still names the same file.
    moved = rebase_paths({"init_weights": os.path.join("w", "x.pt"), "lr": 0.1}, project, tmp_path / "c" / "q.json")
    assert moved == {"init_weights": str(inside), "lr": 0.1}
    assert rebase_paths({"init_weights": str(inside)}, None, project) == {"init_weights": os.path.join("w", "x.pt")}
    assert rebase_paths({"init_weights": 5}, None, project) == {"init_weights": 5}  # checked where it is read


def test_the_setting_is_checked_like_every_other():
    assert TrainConfig().init_weights == ""
    assert TrainConfig.from_dict({"init_weights": Path("x.pt")}, strict=True).init_weights == "x.pt"
    with pytest.raises(ConfigError, match=r"^init_weights: expected text, got \[1\]"):
        TrainConfig.from_dict({"init_weights": [1]}, strict=True)
    loose = TrainConfig.from_dict({"init_weights": 3})
    assert loose.init_weights == "" and loose.notes == ["init_weights: expected text, got 3; using the default ''"]
