"""Training settings: one flat, JSON-friendly dataclass, stored in `Project.training`.

Values read from a project file are checked field by field; a bad or unknown value falls back to
its default with a warning (a hand-edited file must never stop the app from opening), while the
command line uses `strict=True` so a typo is an error.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DATASETS: dict[str, str] = {
    "shapes": "Shapes (built in)",
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "svhn": "SVHN",
    "folder": "Image folder",
}
OPTIMIZERS: dict[str, str] = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
SCHEDULERS: dict[str, str] = {"none": "Constant", "step": "Step decay", "cosine": "Cosine", "onecycle": "One-cycle"}
LOSSES: dict[str, str] = {"cross_entropy": "Cross-entropy", "nll": "NLL (after LogSoftmax)",
                          "mse": "MSE (one-hot targets)"}
TOGGLES = ("auto", "on", "off")


class ConfigError(ValueError):
    """A setting has a value the trainer cannot use; the message names the setting."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


def _num(lo: float | None = None, hi: float | None = None, integer: bool = False):
    def check(name: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise ConfigError(name, f"expected a number, got {value!r}") from None
            else:
                raise ConfigError(name, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(name, "must be a finite number")
        if integer:
            if value != int(value):
                raise ConfigError(name, f"expected a whole number, got {value}")
            value = int(value)
        else:
            value = float(value)
        if lo is not None and value < lo:
            raise ConfigError(name, f"must be at least {lo:g} (got {value:g})")
        if hi is not None and value > hi:
            raise ConfigError(name, f"must be at most {hi:g} (got {value:g})")
        return value

    return check


def _choice(options):
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise ConfigError(name, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    return check


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
        return value.lower() in ("true", "yes", "on")
    raise ConfigError(name, f"expected true or false, got {value!r}")


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(name, f"expected text, got {value!r}")
    return os.fspath(value)


def _channels(name: str, value: Any) -> int:
    if isinstance(value, bool) or value not in (1, 3, "1", "3"):
        raise ConfigError(name, f"expected 1 (grayscale) or 3 (colour), got {value!r}")
    return int(value)


def _device(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(name, f"expected auto, cpu, cuda, cuda:N or mps, got {value!r}")
    v = value.strip().lower()
    if v in ("auto", "cpu", "cuda", "mps") or (v.startswith("cuda:") and v[5:].isdigit()):
        return v
    raise ConfigError(name, f"expected auto, cpu, cuda, cuda:N or mps, got {value!r}")


@dataclass
class TrainConfig:
    # data
    dataset: str = "shapes"
    data_root: str = ""  # "" means default_data_root()
    download: bool = False
    val_split: float = 0.1  # fraction of the training images held out for validation
    train_limit: int = 0  # use at most this many training images (0: all); handy for quick trials
    shapes_train: int = 10000  # size of the built-in dataset (training + validation)
    shapes_test: int = 2000
    shapes_size: int = 28
    shapes_channels: int = 1
    resize: int = 0  # square side in pixels; 0 keeps the dataset's own size
    normalize: bool = True  # subtract the training set's per-channel mean, divide by its std
    # augmentation (training batches only)
    crop_padding: int = 0  # random crop after zero padding by this many pixels
    hflip: bool = False
    rotation: float = 0.0  # random rotation in +-degrees
    color_jitter: float = 0.0  # brightness/contrast/saturation factor range 1 +- this
    hue: float = 0.0  # hue shift range +-this, as a fraction of the colour circle (colour images only)
    # optimisation
    optimizer: str = "adam"
    lr: float = 0.001
    momentum: float = 0.9  # SGD and RMSprop
    nesterov: bool = False  # SGD
    weight_decay: float = 0.0
    scheduler: str = "none"
    step_size: int = 1  # epochs between step-decay steps
    gamma: float = 0.1  # step-decay factor
    loss: str = "cross_entropy"
    epochs: int = 2
    batch_size: int = 64
    seed: int = 0
    grad_clip: float = 0.0  # max gradient norm; 0 disables clipping
    # hardware
    device: str = "auto"
    amp: bool = True  # mixed precision; only ever used on CUDA
    channels_last: str = "auto"
    num_workers: int = -1  # DataLoader workers for data that does not fit in memory; -1 picks
    # live reporting
    log_interval: float = 0.05  # seconds between batch events (20 per second)
    feature_interval: float = 0.25  # seconds between feature-map frames
    # run logs (metrics.csv always; TensorBoard event files when asked): <log_dir>/<run name>/
    tensorboard: bool = False
    log_dir: str = ""  # "" means runlog.default_log_dir: `runs` next to the project
    notes: list[str] = field(default_factory=list, repr=False, compare=False)  # warnings from from_dict

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("notes")
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, strict: bool = False) -> TrainConfig:
        cfg = cls()
        if not data:
            return cfg
        if not isinstance(data, dict):
            if strict:
                raise ConfigError("training", "expected an object of settings")
            cfg.notes.append("the training settings are not an object; using defaults")
            return cfg
        known = {f.name for f in fields(cls)} - {"notes"}
        for key, value in data.items():
            if key not in known:
                if strict:
                    raise ConfigError(key, "unknown setting")
                cfg.notes.append(f"ignored unknown training setting {key!r}")
                continue
            try:
                setattr(cfg, key, CHECKS[key](key, value))
            except ConfigError as exc:
                if strict:
                    raise
                cfg.notes.append(f"{exc}; using the default {getattr(cls(), key)!r}")
        return cfg

    def replace(self, **changes: Any) -> TrainConfig:
        data = self.to_dict()
        data.update(changes)
        return TrainConfig.from_dict(data, strict=True)

    def check(self) -> TrainConfig:
        """Raise ConfigError for the first bad value (fields set directly skip from_dict)."""
        return self.replace()

    @property
    def augments(self) -> bool:
        return bool(self.crop_padding or self.hflip or self.rotation or self.color_jitter or self.hue)

    def data_key(self) -> tuple:
        """Everything that decides which images the data pipeline holds (for caching)."""
        return (self.dataset, self.resolved_root(), self.shapes_train, self.shapes_test, self.shapes_size,
                self.shapes_channels, self.resize, self.seed, self.val_split, self.train_limit)

    def resolved_root(self) -> str:
        return self.data_root or default_data_root()


CHECKS = {
    "dataset": _choice(tuple(DATASETS)),
    "data_root": _text,
    "download": _bool,
    "val_split": _num(0.0, 0.9),
    "train_limit": _num(0, 10**9, integer=True),
    "shapes_train": _num(20, 2_000_000, integer=True),
    "shapes_test": _num(10, 1_000_000, integer=True),
    "shapes_size": _num(16, 512, integer=True),
    "shapes_channels": _channels,
    "resize": _num(0, 4096, integer=True),
    "normalize": _bool,
    "crop_padding": _num(0, 64, integer=True),
    "hflip": _bool,
    "rotation": _num(0.0, 180.0),
    "color_jitter": _num(0.0, 0.9),
    "hue": _num(0.0, 0.5),
    "optimizer": _choice(tuple(OPTIMIZERS)),
    "lr": _num(1e-12, 100.0),
    "momentum": _num(0.0, 0.999999),
    "nesterov": _bool,
    "weight_decay": _num(0.0, 10.0),
    "scheduler": _choice(tuple(SCHEDULERS)),
    "step_size": _num(1, 10**6, integer=True),
    "gamma": _num(1e-6, 1.0),
    "loss": _choice(tuple(LOSSES)),
    "epochs": _num(1, 100_000, integer=True),
    "batch_size": _num(1, 1 << 20, integer=True),
    "seed": _num(0, 2**31 - 1, integer=True),
    "grad_clip": _num(0.0, 1e6),
    "device": _device,
    "amp": _bool,
    "channels_last": _choice(TOGGLES),
    "num_workers": _num(-1, 64, integer=True),
    "log_interval": _num(0.0, 60.0),
    "feature_interval": _num(0.0, 600.0),
    "tensorboard": _bool,
    "log_dir": _text,
}


def default_data_root() -> str:
    """$CNNBUILDER_DATASETS if set, else the per-user data folder (created when first needed)."""
    env = os.environ.get("CNNBUILDER_DATASETS")
    if env:
        return env
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("cnnbuilder", appauthor=False), "datasets")
