"""Training settings: one flat, JSON-friendly dataclass, stored in `Project.training`.

Values read from a project file are checked field by field; a bad or unknown value falls back to
its default with a warning (a hand-edited file must never stop the app from opening), while the
command line uses `strict=True` so a typo is an error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
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


def shown(value: Any, limit: int = 60) -> str:
    """repr() for a message, safe and short for any value (a 5,000-digit int cannot even be printed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        sign = "a negative" if value < 0 else "a"
        digits = math.floor(math.log10(abs(value))) + 1
        digits -= 10 ** (digits - 1) > abs(value)  # log10 rounds 99…9 up to the next power of ten
        return f"{sign} number with {digits:,} digits"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - e.g. a list holding a huge int
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _num(lo: float | None = None, hi: float | None = None, integer: bool = False):
    def check(name: str, value: Any) -> Any:
        given = value
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(name, f"expected a number, got {shown(value)}")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(name, f"expected a number, got {shown(value)}") from None
        # Huge ints are compared as ints: float() of a 400-digit int raises OverflowError.
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(name, f"must be a finite number (got {shown(given)})")
        if integer:
            if isinstance(value, float):
                if value != int(value):
                    raise ConfigError(name, f"expected a whole number, got {value}")
                value = int(value)
        if lo is not None and value < lo:
            raise ConfigError(name, f"must be at least {lo:g} (got {shown(value)})")
        if hi is not None and value > hi:
            raise ConfigError(name, f"must be at most {hi:g} (got {shown(value)})")
        return value if integer else float(value)

    return check


def _choice(options):
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise ConfigError(name, f"expected one of {', '.join(options)}, got {shown(value)}")
        return value

    return check


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
        return value.lower() in ("true", "yes", "on")
    raise ConfigError(name, f"expected true or false, got {shown(value)}")


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(name, f"expected text, got {shown(value)}")
    return os.fspath(value)


def _channels(name: str, value: Any) -> int:
    if type(value) not in (int, str) or value not in (1, 3, "1", "3"):
        raise ConfigError(name, f"expected 1 (grayscale) or 3 (colour), got {shown(value)}")
    return int(value)


def _device(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(name, f"expected auto, cpu, cuda, cuda:N or mps, got {shown(value)}")
    v = value.strip().lower()
    if v in ("auto", "cpu", "cuda", "mps") or (v.startswith("cuda:") and v[5:].isdigit()):
        return v
    raise ConfigError(name, f"expected auto, cpu, cuda, cuda:N or mps, got {shown(value)}")


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
    # fine-tuning: a per-block weights file (node_weights) the model starts from; "" = random init.
    # Kept relative to the project file's folder when it lies inside it (see project_relative).
    init_weights: str = ""
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
            if not isinstance(key, str) or key not in known:
                if strict:
                    raise ConfigError(key[:60] if isinstance(key, str) else shown(key), "unknown setting")
                cfg.notes.append(f"ignored unknown training setting {shown(key)}")
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


@dataclass(frozen=True)
class Setting:
    """One training setting, described once: the core checks values with it, the GUI's form is
    built from it (so its bounds are the core's, and a value the core accepts is shown and kept
    exactly), and the docs name it."""

    name: str
    check: Callable[[str, Any], Any]
    label: str = ""
    group: str = ""  # form section; "" = not in the form (advanced: project file and CLI only)
    kind: str = ""  # the editor: "choice", "int", "float", "bool", "path", "device"
    lo: float | None = None
    hi: float | None = None
    step: float = 1.0
    log: bool = False  # spans decades: stepped along 1-2-5 and shown as 1e-05, not 0.00001
    choices: dict[Any, str] | None = None
    help: str = ""
    when: Callable[[TrainConfig], bool] | None = None  # shown only when it applies
    placeholder: str = ""  # what an empty text field means


def _s(name: str, kind: str, label: str, group: str, lo: float | None = None, hi: float | None = None, *,
       step: float = 1.0, log: bool = False, choices: dict | None = None, help: str = "",
       when: Callable[[TrainConfig], bool] | None = None, check: Callable[[str, Any], Any] | None = None,
       placeholder: str = "") -> Setting:
    if check is None:
        check = {"int": _num(lo, hi, integer=True), "float": _num(lo, hi), "bool": _bool, "path": _text,
                 "device": _device}.get(kind) or _choice(tuple(choices or ()))
    return Setting(name, check, label, group, kind, lo, hi, step, log, choices, help, when, placeholder)


DATA, AUG, OPT, HW = "Data", "Augmentation (training images)", "Optimisation", "Hardware"
LOG = "Run log (metrics.csv of every run)"
START = "Start from (fine-tuning)"
_shapes = lambda c: c.dataset == "shapes"  # noqa: E731
SETTINGS: dict[str, Setting] = {s.name: s for s in (
    _s("dataset", "choice", "Dataset", DATA, choices=DATASETS),
    _s("data_root", "path", "Data folder", DATA, when=lambda c: c.dataset != "shapes",
       placeholder="default data folder",
       help="Folder with the dataset in torchvision's layout, or your image folder (one subfolder per class, "
            "optionally inside train/ and test/)"),
    _s("download", "bool", "Download if missing (needs internet)", DATA,
       when=lambda c: c.dataset not in ("shapes", "folder")),
    _s("shapes_train", "int", "Images", DATA, 20, 2_000_000, step=1000, when=_shapes),
    _s("shapes_test", "int", "Test images", "", 10, 1_000_000),
    _s("shapes_channels", "choice", "Colours", DATA, choices={1: "grayscale", 3: "colour"}, check=_channels,
       when=_shapes),
    _s("shapes_size", "int", "Image size (px)", DATA, 16, 512, step=4, when=_shapes),
    _s("val_split", "float", "Validation share", DATA, 0.0, 0.9, step=0.05),
    _s("train_limit", "int", "Use at most (0: all)", DATA, 0, 10**9, step=1000),
    _s("resize", "int", "Resize to (px, 0: keep)", DATA, 0, 4096, step=4),
    _s("normalize", "bool", "Normalize (dataset mean and std)", DATA),
    _s("crop_padding", "int", "Random crop, padding (px)", AUG, 0, 64),
    _s("hflip", "bool", "Random horizontal flip", AUG),
    _s("rotation", "float", "Random rotation (±°)", AUG, 0.0, 180.0, step=5.0),
    _s("color_jitter", "float", "Colour jitter (±)", AUG, 0.0, 0.9, step=0.05),
    _s("hue", "float", "Hue jitter (±, colour only)", AUG, 0.0, 0.5, step=0.02),
    _s("optimizer", "choice", "Optimizer", OPT, choices=OPTIMIZERS),
    _s("lr", "float", "Learning rate", OPT, 1e-12, 100.0, log=True),
    _s("momentum", "float", "Momentum", OPT, 0.0, 0.999999, step=0.05,
       when=lambda c: c.optimizer in ("sgd", "rmsprop")),
    _s("nesterov", "bool", "Nesterov momentum", OPT, when=lambda c: c.optimizer == "sgd"),
    _s("weight_decay", "float", "Weight decay", OPT, 0.0, 10.0, log=True),
    _s("scheduler", "choice", "Schedule", OPT, choices=SCHEDULERS),
    _s("step_size", "int", "Decay every (epochs)", OPT, 1, 10**6, when=lambda c: c.scheduler == "step"),
    _s("gamma", "float", "Decay factor", OPT, 1e-6, 1.0, step=0.05, when=lambda c: c.scheduler == "step"),
    _s("loss", "choice", "Loss", OPT, choices=LOSSES),
    _s("epochs", "int", "Epochs", OPT, 1, 100_000),
    _s("batch_size", "int", "Batch size", OPT, 1, 1 << 20, step=16),
    _s("seed", "int", "Seed", OPT, 0, 2**31 - 1),
    _s("grad_clip", "float", "Clip gradient norm (0: off)", OPT, 0.0, 1e6, step=0.5),
    _s("device", "device", "Device", HW, choices={"auto": "Auto (detecting…)", "cpu": "CPU"}),
    _s("amp", "bool", "Mixed precision (CUDA only)", HW),
    _s("channels_last", "choice", "Channels-last memory format", "", choices=dict.fromkeys(TOGGLES, "")),
    _s("num_workers", "int", "Data loader workers (-1: pick)", "", -1, 64),
    _s("log_interval", "float", "Seconds between batch events", "", 0.0, 60.0),
    _s("feature_interval", "float", "Seconds between feature-map frames", "", 0.0, 600.0),
    _s("init_weights", "path", "Weights file", START, placeholder="none: random initialisation",
       help="Start training from these weights (a weights file written by File ▸ Import with \"Carry weights "
            "over\"); a block whose tensor no longer fits (e.g. a classifier changed to 10 classes) starts "
            "from random values, and the training log says which"),
    _s("tensorboard", "bool", "TensorBoard event files", LOG),
    _s("log_dir", "path", "Log folder", LOG, placeholder="runs/ next to the project",
       help="Each run writes <folder>/<run name>/metrics.csv, and TensorBoard's event files when ticked: "
            "view them with  tensorboard --logdir <folder>"),
)}
CHECKS = {name: s.check for name, s in SETTINGS.items()}


def default_data_root() -> str:
    """$CNNBUILDER_DATASETS if set, else the per-user data folder (created when first needed)."""
    env = os.environ.get("CNNBUILDER_DATASETS")
    if env:
        return env
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("cnnbuilder", appauthor=False), "datasets")


# Settings that name a file belonging with the project: stored relative to the project file's folder
# when the file lies inside it (the two move together), and resolved against that folder for a run.
PROJECT_PATHS = ("init_weights",)


def project_relative(path: str | os.PathLike, project_file: str | os.PathLike | None) -> str:
    """How a file chosen for the project is stored: relative to the project's folder when inside it,
    else absolute (an untitled project has no folder: absolute)."""
    path = os.fspath(path)
    if not path:
        return ""
    absolute = os.path.abspath(path)
    if project_file is None:
        return absolute
    folder = os.path.dirname(os.path.abspath(os.fspath(project_file)))
    try:
        rel = os.path.relpath(absolute, folder)
    except ValueError:  # another drive on Windows
        return absolute
    return absolute if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def resolve_project_path(value: str, project_file: str | os.PathLike | None) -> str:
    """The file a stored setting names: a relative value is relative to the project's folder (to the
    working folder for a project that has no file yet)."""
    if not value:
        return ""
    value = os.path.expanduser(value)
    if os.path.isabs(value) or project_file is None:
        return os.path.abspath(value)
    return os.path.join(os.path.dirname(os.path.abspath(os.fspath(project_file))), value)


def rebase_paths(settings: dict[str, Any], old_file: str | os.PathLike | None,
                 new_file: str | os.PathLike | None) -> dict[str, Any]:
    """`settings` for a project saved from `old_file` to `new_file`: its project paths still name the
    same files (relative to the new folder when inside it). Other values pass through untouched."""
    if not isinstance(settings, dict):
        return settings
    out = dict(settings)
    for name in PROJECT_PATHS:
        value = out.get(name)
        if isinstance(value, str) and value:
            out[name] = project_relative(resolve_project_path(value, old_file), new_file)
    return out


def shapes_fitting(input_shape: tuple[int, ...] | None, settings: dict[str, Any]) -> dict[str, Any]:
    """Settings on which the built-in shapes dataset matches a model's Input (it can be drawn
    at any square size in 1 or 3 channels), so an example opens ready to train. Settings that
    name another dataset, or an input shapes cannot match, come back unchanged."""
    if settings.get("dataset", "shapes") != "shapes" or not input_shape or len(input_shape) != 3:
        return settings
    c, h, w = input_shape
    fitted = {**settings, "dataset": "shapes", "shapes_channels": c, "shapes_size": h}
    if h != w:
        return settings
    try:
        TrainConfig.from_dict(fitted, strict=True)
    except ConfigError:
        return settings
    return fitted
