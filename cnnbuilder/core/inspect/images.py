"""A user's image prepared exactly as the run's data pipeline prepares its images: decoded and
converted to grayscale or RGB and resized by `training.data.decode_image` (what an image folder
goes through), normalised by `training.augment.BatchTransform` with the training images' mean and
std. Comes back with the de-normalised image the model sees and notes on what was changed
("resized from 640×480 to 28×28", "converted from RGB to grayscale").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..training.config import TrainConfig
from ..training.data import DataError


class ImageError(Exception):
    """An image cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class Preprocessing:
    """What turns a picture into the model's input: its size, and the normalisation and class
    names of the data the model was trained on. Plain data, so it can be sent to a worker process."""

    shape: tuple[int, int, int]  # C, H, W of the model's Input
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    normalize: bool = True
    class_names: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # where the statistics and names come from, when it is worth saying

    def __post_init__(self) -> None:
        c = self.shape[0]
        if not self.normalize or not self.mean:
            object.__setattr__(self, "mean", (0.0,) * c)
            object.__setattr__(self, "std", (1.0,) * c)
        if len(self.mean) != c or len(self.std) != c:
            raise ImageError(f"normalisation needs one mean and one std per channel ({c}), got "
                             f"{len(self.mean)} and {len(self.std)}")
        if any(not np.isfinite(s) or s <= 0 for s in self.std) or not all(np.isfinite(self.mean)):
            raise ImageError("normalisation: every std must be a positive number and every mean finite")


def preprocessing_for(cfg: TrainConfig, shape: tuple[int, ...], *, bundle=None, mean=None, std=None,
                      class_names=None, should_stop=lambda: False) -> Preprocessing:
    """The preprocessing of a run with settings `cfg` for a model taking `shape` (C×H×W).

    The mean and std are those training used: given, else from `bundle` (the loaded data, as the
    GUI holds it), else computed by loading the training images as training does (a few seconds
    for the built-in shapes; DataError when the dataset is not there). Class names: given (a run
    record's), else the bundle's, else the dataset's."""
    from ..training.data import dataset_meta, load_data

    if len(shape) != 3:
        raise ImageError(f"images need a model whose Input is C×H×W (this one takes {'×'.join(map(str, shape))})")
    shape = tuple(int(d) for d in shape)
    notes: list[str] = []
    names: tuple[str, ...] = ()
    if class_names is not None:
        names = tuple(str(n) for n in class_names)
    elif bundle is not None:
        names = tuple(bundle.meta.class_names)
    else:
        try:
            names = dataset_meta(cfg).class_names
        except DataError as exc:
            notes.append(f"class names unknown ({exc})")
    if cfg.normalize and (mean is None or std is None):
        if bundle is None:
            bundle = load_data(cfg, should_stop)
        mean, std = bundle.mean, bundle.std
    return Preprocessing(shape, tuple(float(m) for m in mean or ()), tuple(float(s) for s in std or ()),
                         cfg.normalize, names, tuple(notes))


@dataclass(frozen=True)
class PreparedImage:
    """One image as the model sees it."""

    source: str  # the file (or "" for an array)
    x: np.ndarray  # float32 1×C×H×W, normalised: the model's input
    display: np.ndarray  # uint8 H×W×3: the input de-normalised, as a picture
    original: tuple[int, int]  # width, height of the file
    notes: tuple[str, ...] = field(default=())

    def tensor(self):
        import torch

        return torch.from_numpy(self.x.copy())


_MODES = {"1": "black-and-white", "L": "grayscale", "LA": "grayscale with transparency", "P": "a palette image",
          "RGB": "RGB", "RGBA": "RGB with transparency", "CMYK": "CMYK", "YCbCr": "YCbCr", "I": "32-bit grayscale",
          "I;16": "16-bit grayscale", "F": "floating-point grayscale", "LAB": "Lab", "HSV": "HSV", "PA": "a palette "
          "image with transparency"}


def prepare_image(path: str | os.PathLike, prep: Preprocessing) -> PreparedImage:
    """Read, convert, resize and normalise one image file; ImageError names the file when it cannot."""
    from PIL import Image, UnidentifiedImageError

    from ..training.data import decode_image
    from ..training.events import first_line

    p = Path(path)
    where = os.fspath(path)
    c, h, w = prep.shape
    try:
        if p.is_dir():
            raise ImageError(f"{where}: is a folder, not an image")
        with Image.open(p) as im:
            size, mode, frames = im.size, im.mode, getattr(im, "n_frames", 1)
        raw = decode_image(os.fspath(p), c, (h, w))  # what an image folder's images go through
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{where}: no such file") from None
    except PermissionError:
        raise ImageError(f"{where}: no permission to read it") from None
    except UnidentifiedImageError:
        raise ImageError(f"{where}: not an image (or in a format Pillow cannot read)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{where}: the image is too large to open safely") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt data
        raise ImageError(f"{where}: damaged image ({first_line(exc)[:200] or type(exc).__name__})") from None
    notes = []
    was = _MODES.get(mode, mode)
    now = "grayscale" if c == 1 else "RGB"
    if was != now:
        notes.append(f"converted from {was} to {now}" + (" (transparency dropped)" if "A" in mode else ""))
    if frames > 1:
        notes.append(f"the first of {frames} frames")
    if size != (w, h):
        stretched = abs(size[0] * h - size[1] * w) > max(size[0], size[1])  # aspect ratio off by over a pixel
        notes.append(f"resized from {size[0]}×{size[1]} to {w}×{h}" +
                     (" (stretched, as training resizes its images)" if stretched else ""))
    out = prepare_array(raw.numpy(), prep)
    return PreparedImage(where, out.x, out.display, size, tuple(notes) + out.notes)


def prepare_array(image: np.ndarray, prep: Preprocessing) -> PreparedImage:
    """A uint8 C×H×W image already at the model's size (e.g. a test sample of the dataset)."""
    import torch

    from ..training.augment import BatchTransform

    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.shape != tuple(prep.shape):
        raise ImageError(f"expected a uint8 image of {'×'.join(map(str, prep.shape))}, got {arr.dtype} "
                         f"{'×'.join(map(str, arr.shape))}")
    c = prep.shape[0]
    transform = BatchTransform(TrainConfig(normalize=prep.normalize), prep.mean, prep.std, c, "cpu")
    x = transform(torch.from_numpy(np.ascontiguousarray(arr))[None]).numpy().astype(np.float32)
    notes = ()
    if prep.normalize:
        notes = (f"normalised with the training images' mean {_fmt(prep.mean)} and std {_fmt(prep.std)}",)
    return PreparedImage("", x, display_image(x, prep), (arr.shape[2], arr.shape[1]), notes)


def display_image(x: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """The model's input (1×C×H×W, normalised) de-normalised into a uint8 H×W×3 picture."""
    mean = np.asarray(prep.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(prep.std, np.float32).reshape(-1, 1, 1)
    img = np.clip(np.asarray(x, np.float32)[0] * std + mean, 0.0, 1.0)
    img = np.rint(img * 255.0).astype(np.uint8).transpose(1, 2, 0)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)


def _fmt(values) -> str:
    return "/".join(f"{v:.3f}" for v in values)
