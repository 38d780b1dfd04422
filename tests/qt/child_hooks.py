"""Functions the GUI tests run inside the training process (`TrainingWorker.call`), where torch
works and the files are written: fake device notes, a full disk, raw bytes on the pipe. Each
patch is undone by `undo()`, which the `in_child` fixture calls after every test (the process
serves the next test too)."""

from __future__ import annotations

import errno
import os
import pickle

import pytest

_patches: list[pytest.MonkeyPatch] = []


def _patch() -> pytest.MonkeyPatch:
    mp = pytest.MonkeyPatch()
    _patches.append(mp)
    return mp


def device_notes(notes: list[str]) -> bool:
    from cnnbuilder.core.training import devices

    _patch().setattr(devices, "device_notes", lambda: list(notes))
    return True


def full_disk(room: int, after: int) -> bool:
    """Every atomic write in the checkpoint module after the first `after` fails as a full disk does."""
    from tests.core.tiny_training import failing_disk

    failing_disk(_patch(), OSError(errno.ENOSPC, "No space left on device"), room=room, after=after)
    return True


def undo() -> int:
    n = len(_patches)
    while _patches:
        _patches.pop().undo()
    return n


def send_raw(*messages: bytes) -> int:
    """Each as one message to the GUI, unchecked: what a damaged pipe or a bug would send."""
    from cnnbuilder.core.training import service

    for data in messages:
        service.CURRENT.raw(data)
    return len(messages)


def send_pickled(*messages) -> int:
    return send_raw(*(pickle.dumps(m) for m in messages))


def pid() -> int:
    return os.getpid()


def send_tensor() -> int:
    """An event holding a tensor: reading it would import torch in the GUI."""
    import torch

    return send_pickled(("event", torch.zeros(1)))
