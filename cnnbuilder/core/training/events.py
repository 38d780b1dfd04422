"""What the training engine reports: plain dataclasses of numbers, strings and numpy arrays.

They are safe to hand to another thread (the GUI) or to print (the CLI): no tensors, no
references into the running model. Every event carries the run id so a consumer can drop events
from a run it no longer shows. Epochs are counted from 1, steps are completed optimiser steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Event:
    run_id: int


@dataclass(frozen=True)
class Status(Event):
    """A phase begins (loading data, building the model, testing)."""

    message: str


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know that does not stop the run (skipped files, a reset setting)."""

    message: str


@dataclass(frozen=True)
class Started(Event):
    device: str  # "cuda:0", "cpu", ...
    device_name: str  # "NVIDIA GeForce RTX 4090" or "CPU"
    dataset: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    num_train: int
    num_val: int
    num_test: int
    epochs: int
    steps_per_epoch: int
    total_steps: int
    start_step: int  # > 0 when resuming
    start_epoch: int  # 1-based epoch the run starts in
    amp: bool
    in_memory: bool
    config: dict[str, Any]
    history: dict[str, list[float]]  # curves so far (non-empty when resuming)
    run_dir: str = ""  # the folder holding this run's metrics.csv (and TensorBoard files); "" if none
    processes: int = 1  # torchrun processes training together (batch size is per process)


@dataclass(frozen=True)
class BatchMetrics(Event):
    epoch: int
    step: int  # completed steps so far
    total_steps: int
    steps: np.ndarray  # every step since the previous BatchMetrics (int64) ...
    losses: np.ndarray  # ... and its training loss (float32): the raw curve, no step skipped
    loss: float  # mean of `losses`
    acc: float  # running training accuracy of this epoch, 0..1
    lr: float
    images_per_s: float
    eta_s: float
    epoch_fraction: float  # 0..1 within the current epoch


@dataclass(frozen=True)
class EpochMetrics(Event):
    epoch: int
    step: int
    train_loss: float
    train_acc: float
    val_loss: float | None  # None without a validation split
    val_acc: float | None
    lr: float
    seconds: float


@dataclass(frozen=True)
class FeatureMaps(Event):
    node_id: str
    step: int
    maps: np.ndarray  # float32, C×H×W (a flat output is F×1×1)
    total_channels: int  # before capping the number sent
    label: int  # true class of the sample
    message: str = ""  # set instead of maps when the block has no output to show


@dataclass(frozen=True)
class Activations(Event):
    """Every block's output on the fixed probe batch: mean, std and (after ReLU/ReLU6) the share
    of units that are zero for every probe image ("dead"; NaN for other blocks)."""

    step: int
    epoch: int  # 1-based epoch in progress (0: before the first step)
    node_ids: tuple[str, ...]
    mean: np.ndarray  # float32, one per node id
    std: np.ndarray
    dead: np.ndarray


@dataclass(frozen=True)
class TestImages(Event):
    """Test images asked for by index (run_id: the request's tag), uint8 N×C×H×W as loaded."""

    __test__ = False  # not a pytest test class, despite its name

    indices: np.ndarray  # int64
    images: np.ndarray
    message: str = ""  # set instead of images when they cannot be had


@dataclass(frozen=True)
class AugmentPreview(Event):
    """Training images after the chosen augmentation (run_id: the request's tag), uint8 N×C×H×W."""

    images: np.ndarray
    message: str = ""  # set instead of images when they cannot be had


@dataclass(frozen=True)
class Paused(Event):
    step: int


@dataclass(frozen=True)
class Resumed(Event):
    step: int


@dataclass(frozen=True)
class CheckpointSaved(Event):
    path: str
    step: int


@dataclass(frozen=True)
class CheckpointFailed(Event):
    """A checkpoint asked for during a run could not be written; the run goes on."""

    path: str
    message: str  # one line naming the file and why


@dataclass(frozen=True)
class Finished(Event):
    epochs: int
    step: int
    test_loss: float
    test_acc: float
    confusion: np.ndarray  # K×K int64, rows = true class, columns = predicted
    precision: np.ndarray  # K float64 (NaN where a class was never predicted)
    recall: np.ndarray  # K float64 (NaN where a class has no test images)
    class_names: tuple[str, ...]
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)
    # Per test image in the split's order, for the mistakes gallery: true class, predicted class
    # (int64) and the predicted class's probability (float32). None when not computed.
    test_true: np.ndarray | None = None
    test_pred: np.ndarray | None = None
    test_prob: np.ndarray | None = None


@dataclass(frozen=True)
class Failed(Event):
    message: str
    # config | model | data | checkpoint | weights | device | nan | oom | crash (the process died) | error
    kind: str = "error"
    details: str = ""  # traceback for "error"; shown on request, never instead of the message


@dataclass(frozen=True)
class Cancelled(Event):
    epoch: int
    step: int


TERMINAL = (Finished, Failed, Cancelled)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ("" if it has none): enough for a user."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
