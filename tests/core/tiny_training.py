"""A model and settings that train in a blink, for tests of what surrounds training (checkpoints,
saving, resuming) rather than of training itself; and a disk that fills up."""

from __future__ import annotations

from pathlib import Path

import cnnbuilder.core.training.checkpoint as ckpt
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.training.config import TrainConfig

TINY_CFG = TrainConfig(shapes_train=200, shapes_test=40, shapes_size=16, val_split=0.1, batch_size=64, epochs=2,
                       lr=0.002, scheduler="onecycle", log_interval=0.0)


def tiny_graph() -> Graph:
    """Convolution, BatchNorm (buffers) and Linear: every kind of state, at almost no cost per run."""
    g = Graph()
    ids = [g.add_node(t, p).id for t, p in (("Input", {"shape": [1, 16, 16]}),
                                             ("Conv2d", {"out_channels": 2, "kernel_size": 3}),
                                             ("BatchNorm2d", {}), ("Flatten", {}), ("Linear", {"out_features": 10}))]
    for a, b in zip(ids, ids[1:], strict=False):
        g.connect(a, b)
    return g


class _FullFile:
    """A file that takes `room` bytes, then fails the way a full disk does."""

    def __init__(self, f, room: int, exc: BaseException):
        self._f, self._room, self._exc = f, room, exc

    def write(self, data) -> int:
        n = len(memoryview(data).cast("B"))
        if n > self._room:
            raise self._exc
        self._room -= n
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def failing_disk(monkeypatch, exc: BaseException, room: int = 1000, after: int = 0):
    """Every atomic write in the checkpoint module after the first `after` ones fails with `exc`."""
    real = ckpt.atomic_write
    calls = []

    def write(path, fn):
        calls.append(Path(path))
        if len(calls) <= after:
            return real(path, fn)
        return real(path, lambda f: fn(_FullFile(f, room, exc)))

    monkeypatch.setattr(ckpt, "atomic_write", write)
    return calls
