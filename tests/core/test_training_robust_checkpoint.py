"""Damaged checkpoints never resume. A flipped byte, a cut-off file or a crafted dict (wrong types,
missing or extra keys, state dicts of the wrong shape) ends the resume path of the engine with one
clear line that names the file, before the run starts: no traceback, no silent resume.

The hypothesis fuzzers run a bounded number of examples; CNNB_FUZZ=long runs twenty times more."""

from __future__ import annotations

import copy
import math
import os
import random
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnbuilder.core.project import Project
from cnnbuilder.core.training.checkpoint import (
    CHECKSUM,
    IMPLEMENTATION_FLAGS,
    CheckpointError,
    digest,
    load_checkpoint,
)
from cnnbuilder.core.training.engine import TrainControl, Trainer
from cnnbuilder.core.training.events import BatchMetrics, CheckpointSaved, Failed, Finished, Notice, Started

from .tiny_training import TINY_CFG, tiny_graph

SCALE = 20 if os.environ.get("CNNB_FUZZ") == "long" else 1
CFG = TINY_CFG


def fuzz(examples: int):
    return settings(max_examples=examples * SCALE, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: threads only fight the other test processes for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, one_thread):
    """A checkpoint taken mid-epoch (step 4 of 6), so the accumulators, the schedule and the
    optimiser state all hold something; the data is loaded once and shared by every resume."""
    graph = tiny_graph()
    folder = tmp_path_factory.mktemp("ckpt")
    path = folder / "good.ckpt"
    control = TrainControl()
    trainer = Trainer(graph, CFG, control=control)
    for ev in trainer.run():
        if isinstance(ev, BatchMetrics) and ev.step == 4:
            control.request_checkpoint(path)
        if isinstance(ev, CheckpointSaved):
            control.stop()
    data = torch.load(path, weights_only=True)
    assert data["batch"] == 1 and data["step"] == 4 and data["optimizer"]["state"]
    return Saved(graph=graph, path=path, raw=path.read_bytes(), data=data, bundle=trainer.bundle, folder=folder)


class Saved(SimpleNamespace):
    def __repr__(self) -> str:  # hypothesis prints the fixture with a failing example
        return f"Saved({self.path})"


def resume(s, path) -> list:
    return list(Trainer(s.graph, CFG, resume=path, bundle=s.bundle).run())


def assert_refused(events, path) -> str:
    end = events[-1]
    assert isinstance(end, Failed), f"resumed from a damaged checkpoint: {end}"
    assert end.kind == "checkpoint" and not end.details, end  # a message, not a traceback
    assert str(path) in end.message and "\n" not in end.message, end.message
    assert "damaged" in end.message or "not a cnnbuilder checkpoint" in end.message \
        or "different model" in end.message, end.message
    assert not any(isinstance(e, Started) for e in events)  # nothing resumed
    return end.message


def same(a, b) -> bool:
    """Structural equality, tensors by value and dtype, floats with NaN equal to NaN."""
    if isinstance(a, torch.Tensor):
        if not (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape):
            return False
        raw = lambda t: t.contiguous().reshape(-1).view(torch.uint8)  # noqa: E731 - bitwise, NaN included
        return a.numel() == 0 or torch.equal(raw(a), raw(b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def write_signed(data: dict, path: Path) -> Path:
    data = dict(data)
    data[CHECKSUM] = digest(data)
    torch.save(data, path)
    return path


# -- what the testers found ------------------------------------------------------------------------

def test_the_checkpoint_resumes_and_carries_a_checksum(saved):
    assert saved.data[CHECKSUM] == digest(saved.data)
    events = resume(saved, saved.path)
    assert isinstance(events[-1], Finished), events[-1]
    assert any(isinstance(e, Started) and e.start_step == 4 for e in events)


def test_one_flipped_byte_in_the_weights_is_damage(saved):
    weight = saved.data["model"]["layers.0.weight"].contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    at = saved.raw.index(weight) + len(weight) // 2  # the middle of the first layer's weights
    raw = bytearray(saved.raw)
    raw[at] ^= 0x10
    bad = saved.folder / "flipped.ckpt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="is damaged: its checksum does not match"):
        load_checkpoint(bad)
    message = assert_refused(resume(saved, bad), bad)
    assert message.startswith(f"checkpoint {bad} is damaged")


def test_a_config_that_is_not_a_dict_is_refused(saved):
    bad = write_signed({**saved.data, "config": ["not", "a", "dict"]}, saved.folder / "config.ckpt")
    assert "config should be a dictionary" in assert_refused(resume(saved, bad), bad)
    bad = write_signed({**saved.data, "config": {**saved.data["config"], "lr": 10**400}}, saved.folder / "lr.ckpt")
    assert "config: lr: must be at most" in assert_refused(resume(saved, bad), bad)


def test_state_dicts_are_checked_against_the_model_and_optimiser(saved):
    opt = copy.deepcopy(saved.data["optimizer"])
    opt["state"][0]["exp_avg"] = torch.zeros(3, 3)
    bad = write_signed({**saved.data, "optimizer": opt}, saved.folder / "opt.ckpt")
    assert "optimizer.state[0].exp_avg has shape (3, 3)" in assert_refused(resume(saved, bad), bad)

    model = dict(saved.data["model"])
    model["layers.0.weight"] = model["layers.0.weight"].double()
    bad = write_signed({**saved.data, "model": model}, saved.folder / "dtype.ckpt")
    assert "torch.float64" in assert_refused(resume(saved, bad), bad)

    sched = dict(saved.data["scheduler"])
    sched["last_epoch"] = 99
    bad = write_signed({**saved.data, "scheduler": sched}, saved.folder / "sched.ckpt")
    assert "schedule has taken 99 steps, expected 4" in assert_refused(resume(saved, bad), bad)


def test_an_old_checkpoint_without_a_checksum_resumes_with_a_note_but_is_still_checked(saved):
    old = {k: v for k, v in saved.data.items() if k != CHECKSUM}
    old["version"] = 1
    torch.save(old, saved.folder / "v1.ckpt")
    events = resume(saved, saved.folder / "v1.ckpt")
    assert isinstance(events[-1], Finished), events[-1]
    assert any(isinstance(e, Notice) and "no checksum" in e.message for e in events)

    torch.save({**old, "config": 5}, saved.folder / "v1bad.ckpt")
    assert_refused(resume(saved, saved.folder / "v1bad.ckpt"), saved.folder / "v1bad.ckpt")
    # A version-2 file must carry its checksum: dropping it is no way around the check.
    torch.save({**old, "version": 2}, saved.folder / "nosum.ckpt")
    assert "lacks 'sha256'" in assert_refused(resume(saved, saved.folder / "nosum.ckpt"), saved.folder / "nosum.ckpt")


def test_a_failed_resume_leaves_nothing_to_save(saved):
    bad = write_signed({**saved.data, "config": []}, saved.folder / "nothing.ckpt")
    trainer = Trainer(saved.graph, CFG, resume=bad, bundle=saved.bundle)
    list(trainer.run())
    assert trainer.model is None  # a half-loaded model cannot be saved or exported by mistake
    with pytest.raises(CheckpointError, match="not been built"):
        trainer.save_checkpoint(saved.folder / "x.ckpt")


# -- fuzzers ------------------------------------------------------------------------------------------

@fuzz(40)
@given(flips=st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 7)), min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.floats(0.0, 1.0, exclude_max=True)))
def test_fuzz_flipped_and_truncated_files_never_resume_silently(saved, flips, cut):
    raw = bytearray(saved.raw)
    for pos, bit in flips:
        raw[pos % len(raw)] ^= 1 << bit
    if cut is not None:
        raw = raw[:int(cut * len(raw))]
    path = Path(tempfile.mkdtemp(dir=saved.folder)) / "fuzz.ckpt"
    path.write_bytes(bytes(raw))
    try:
        loaded = load_checkpoint(path)
    except CheckpointError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        loaded = None
    events = resume(saved, path)
    if loaded is None:
        assert_refused(events, path)
    else:  # the flip hit bytes torch does not read (zip padding, a header copy): the content is whole
        assert same(loaded, saved.data)
        assert isinstance(events[-1], Finished), events[-1]


def _paths(obj, prefix=()):
    """Every place in the checkpoint a crafted file could change: dict entries, list items, tensors.
    The graph is stored for reference only; it is replaced whole, never edited inside."""
    yield prefix
    if prefix == ("graph",):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


def _kind(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, (list, tuple)):
        return "sequence"
    return type(v).__name__


POOL = (None, "text", [], {}, True, 10**400, -7, 2.5e300, float("nan"), torch.zeros(3))


def _harmless(path, new) -> bool:
    """The few crafted values that are legitimately valid states (so resuming is right)."""
    if path == ("rng", "python", "gauss"):
        return isinstance(new, float) and math.isfinite(new)
    if path[:2] == ("optimizer", "param_groups") and path[-1] in IMPLEMENTATION_FLAGS:
        return new is None or isinstance(new, bool)
    return path in (("config", "data_root"), ("config", "init_weights")) and new is None  # None means the default


@fuzz(100)
@given(data=st.data())
def test_fuzz_crafted_checkpoints_are_refused_with_a_message(saved, data):
    paths = sorted({p for p in _paths(saved.data) if p}, key=repr)
    path = data.draw(st.sampled_from(paths), "path")
    crafted = copy.deepcopy(saved.data)
    parent, key = _get(crafted, path[:-1]), path[-1]
    old = parent[key]
    ops = ["replace"]
    if isinstance(parent, dict):
        ops.append("delete")
    if isinstance(parent, list):
        ops.append("drop")
    if isinstance(old, dict):
        ops.append("extra")
    if isinstance(old, torch.Tensor):
        ops += ["reshape", "retype"]
    op = data.draw(st.sampled_from(ops), "op")
    new = None
    if op == "replace":
        new = data.draw(st.sampled_from([v for v in POOL if _kind(v) != _kind(old)]), "new")
        parent[key] = new
    elif op in ("delete", "drop"):
        del parent[key]
    elif op == "extra":
        old[data.draw(st.sampled_from(["zz_extra", 12345]), "extra key")] = 1.0
    elif op == "reshape":
        parent[key] = torch.zeros((*old.shape, 2), dtype=old.dtype)
    else:
        parent[key] = old.to(torch.float64 if old.dtype != torch.float64 else torch.float32)
    file = Path(tempfile.mkdtemp(dir=saved.folder)) / "crafted.ckpt"
    if path == (CHECKSUM,):
        torch.save(crafted, file)
    else:
        write_signed(crafted, file)  # a crafted file may well carry a correct checksum
    events = resume(saved, file)
    if op == "replace" and _harmless(path, new):
        assert isinstance(events[-1], (Finished, Failed)) and not getattr(events[-1], "details", "")
        return
    assert_refused(events, file)


def test_damaged_checkpoints_on_the_command_line(saved, tmp_path, capsys):
    """`cnnbuilder train --resume`: exit 2 and one line on stderr, for a few damaged files (the
    last also in a real process, to see no traceback escapes)."""
    import subprocess
    import sys

    from cnnbuilder.cli import main
    from cnnbuilder.core.project import save_project

    save_project(Project(graph=saved.graph, name="tiny", training=CFG.to_dict()), tmp_path / "proj.json")
    proj = tmp_path / "proj.json"
    flipped = bytearray(saved.raw)
    flipped[len(flipped) // 2] ^= 0x01
    (tmp_path / "flipped.ckpt").write_bytes(bytes(flipped))
    (tmp_path / "cut.ckpt").write_bytes(saved.raw[: random.Random(1).randrange(len(saved.raw))])
    write_signed({**saved.data, "config": "x"}, tmp_path / "crafted.ckpt")
    for name in ("flipped.ckpt", "cut.ckpt", "crafted.ckpt"):
        path = tmp_path / name
        assert main(["train", str(proj), "--resume", str(path), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"checkpoint {path} is damaged" in err, err
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "cnnbuilder.cli", "train", str(proj), "--resume", str(path), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert f"checkpoint {path} is damaged: config should be a dictionary" in r.stderr
