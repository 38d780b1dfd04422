"""The training service's wire (core/training/service.py), without a GUI: every message the service
sends reads back as it was; damaged or foreign bytes are refused with an ordinary exception and
never import a module; a run's switches set before its job goes out travel with it, later ones as
messages; exit codes read as words; a real service process answers and ends when its pipe does."""

from __future__ import annotations

import pickle
import random
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core import runs
from cnnbuilder.core.training import service
from cnnbuilder.core.training.events import BatchMetrics, Failed, FeatureMaps, Finished, Started
from cnnbuilder.core.training.service import RemoteControl, ServiceProcess, decode, describe_exit

from ..fuzz import fuzz_settings, mutate_bytes

RECORD = runs.RunRecord(id="20200101-000000-aaaaaa", name="Run 1", created="2020-01-01T00:00:00+00:00",
                        project="p", status="finished", config={"dataset": "shapes"}, code="x = 1\n",
                        graph={"nodes": []}, history={"step": [1, 2], "val_acc": [None, 0.5]}, epochs=1, step=2,
                        params=10, seconds=1.5, test_acc=0.5, confusion=((1, 0), (0, 1)), precision=(1.0, None))

MESSAGES = [
    ("ready", True, "", {"torch": "2.0", "seconds": 1.5, "pid": 7}),
    ("ready", False, "PyTorch could not be loaded: ImportError: no torch", {}),
    ("event", Started(1, "cpu", "CPU", "Shapes", ("a", "b"), (1, 28, 28), 10, 2, 2, 1, 5, 5, 0, 1, False, True,
                      {"lr": 0.1}, {"step": []})),
    ("event", BatchMetrics(1, 1, 3, 5, np.arange(3, dtype=np.int64), np.ones(3, np.float32), 1.0, 0.5, 0.1, 10.0,
                           float("inf"), 0.5)),
    ("event", Finished(1, 1, 5, 0.1, 0.9, np.eye(2, dtype=np.int64), np.array([1.0, np.nan]), np.ones(2), ("a", "b"),
                       1.0, {"step": [1.0]})),
    ("event", FeatureMaps(-3, "n2", 0, np.zeros((2, 4, 4), np.float32), 2, 1, "")),
    ("event", Failed(2, "out of memory", "oom", "Traceback ...")),
    ("devices", [("auto", "Auto (CPU)"), ("cpu", "CPU"), (None, "a note")]),
    ("action", "saved checkpoint /tmp/x.ckpt", True),
    ("run_saved", RECORD, "/tmp/p.runs"),
    ("model", "class Net: ..."),
    ("model", None),
    ("reply", 3, False, "no such weights file"),
    ("reply", 4, True, 12345),
    ("notice", "the training process ignored a damaged request"),
    ("done", 17),
]


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: m[0])
def test_every_message_reads_back_as_sent(msg):
    assert _same(decode(pickle.dumps(msg, protocol=service.PROTOCOL)), msg)
    if any(isinstance(v, np.ndarray) for v in getattr(msg[-1], "__dict__", {}).values()):
        with pytest.raises(pickle.UnpicklingError, match="BYTEARRAY8"):  # protocol 5's buffers are refused
            decode(pickle.dumps(msg, protocol=5))


@pytest.mark.parametrize("msg", [
    ("event", 42), ("event",), ("devices", [("cpu",)]), ("action", "x"), ("run_saved", {}, "f"), ("model", 3),
    ("reply", "3", True, 1), ("done", "1"), ("ready", "yes", "", {}), ("nonsense", 1), (), [], "ready", None,
    {"event": 1}, (1, 2),
])
def test_messages_of_the_wrong_shape_are_refused(msg):
    with pytest.raises(ValueError):
        decode(pickle.dumps(msg))


def test_foreign_objects_are_refused_without_importing_or_calling_anything():
    before = set(sys.modules)
    for data in (b"cos\nsystem\n(S'true'\ntR.", b"csubprocess\nPopen\n.", b"ctorch\nzeros\n.",
                 b"cwebbrowser\nopen\n.", pickle.dumps(("event", pytest.MonkeyPatch))):
        with pytest.raises(pickle.UnpicklingError, match="is not allowed in a message"):
            decode(data)
    assert set(sys.modules) == before


@fuzz_settings(300, 5000)
@given(st.integers(0, len(MESSAGES) - 1), st.randoms(use_true_random=False), st.integers(1, 4), st.sampled_from([4, 5]))
def test_damaged_messages_raise_an_ordinary_exception_and_import_nothing(i, r: random.Random, rounds, protocol):
    # Neither imports a module nor reports through sys.excepthook (pytest-qt would fail the test):
    # protocol 5's buffer opcodes made CPython do that ("deallocated bytearray object has exported buffers").
    data = pickle.dumps(MESSAGES[i], protocol=protocol)
    for _ in range(rounds):
        data = mutate_bytes(data, r)
    before = set(sys.modules)
    try:
        msg = decode(data)
    except Exception:  # noqa: BLE001 - what the GUI's reader catches: any Exception, never a BaseException
        pass
    else:
        assert isinstance(msg, tuple) and isinstance(msg[0], str)
    assert set(sys.modules) == before


def test_a_remote_control_sends_its_state_with_the_job_and_later_switches_as_messages():
    c = RemoteControl()
    c.set_feature_node("n2")
    c.request_checkpoint("/tmp/early.ckpt")
    c.pause()
    sent = []
    state = c.attach(7, sent.append)
    assert state == {"stop": False, "pause": True, "feature_node": "n2", "checkpoints": ["/tmp/early.ckpt"]}
    assert sent == []
    c.resume()
    c.set_feature_node(None)
    c.request_checkpoint("/tmp/later.ckpt")
    c.stop()
    assert sent == [("control", 7, "resume", None), ("control", 7, "feature", (None, True)),
                    ("control", 7, "checkpoint", "/tmp/later.ckpt"), ("control", 7, "stop", None)]
    assert c.stopped and c.feature_node is None and not c.paused  # read by the panel, locally


def test_controls_apply_to_the_services_own_switches():
    from cnnbuilder.core.training.engine import TrainControl

    c = TrainControl()
    for op, arg in (("feature", ("n3", True)), ("pause", None), ("checkpoint", "/tmp/a.ckpt")):
        service._apply_control(c, op, arg)
    assert c.feature_node == "n3" and c.paused
    service._apply_control(c, "stop", None)
    assert c.stopped and not c.paused
    with pytest.raises(ValueError):
        service._apply_control(c, "explode", None)


def test_exit_codes_read_as_words():
    assert describe_exit(-9).startswith("was killed (SIGKILL")
    assert describe_exit(-11) == "crashed (SIGSEGV)"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(None) == "stopped answering"
    assert describe_exit(-200) == "crashed (signal 200)"


def test_a_service_process_answers_in_order_and_reports_its_death():
    got = []
    proc = ServiceProcess(got.append)
    try:
        proc.request("call", 1, "os:getpid", ())
        proc.request("call", 2, "no.such.module:f", ())
        proc.request("bogus")
        proc.send(("control", 99, "stop", None))  # a control for no run: ignored
        proc.send(b"not even a tuple")
        assert proc.wait_idle(120)
        answers = [m for m in got if m[0] != "notice"]  # notices of damaged requests come at once
        assert answers[0][0] == "ready" and answers[0][1] is True  # torch first, then the requests, in order
        replies = [m for m in got if m[0] == "reply"]
        assert replies[0][1:3] == (1, True) and replies[0][3] == proc.pid
        assert replies[1][1:3] == (2, False) and "ModuleNotFoundError" in replies[1][3]
        notices = [m[1] for m in got if m[0] == "notice"]
        assert any("failed a request (bogus)" in n for n in notices)
        assert any("ignored a damaged request" in n for n in notices)
        proc.process.kill()
        deadline = time.monotonic() + 20
        while not any(m[0] == "exit" for m in got) and time.monotonic() < deadline:
            time.sleep(0.05)
        (exit_msg,) = [m for m in got if m[0] == "exit"]
        assert exit_msg[1].startswith("was killed") and exit_msg[2] == []
        assert not proc.alive
    finally:
        proc.stop(2)
