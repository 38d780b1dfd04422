"""Datasets for training: the built-in shapes, torchvision's MNIST family, CIFAR and SVHN, and a
user's own ImageFolder.

Everything that fits in memory is held as one uint8 tensor N×C×H×W (moved to the GPU when training
there) and batched by index; normalisation and augmentation happen on whole batches
(`augment.BatchTransform`). Only a folder too large for memory is streamed through a DataLoader,
whose workers decode and resize with torchvision.transforms.v2 and hand back uint8 tensors that go
through the same batch transform. Missing files, failed downloads and unreadable images become a
`DataError` with a message for the user, never a traceback.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import DATASETS, TrainConfig
from .events import first_line
from .synthetic import CLASSES as SHAPE_CLASSES
from .synthetic import make_shapes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
IN_MEMORY_LIMIT = 3 << 30  # bytes of uint8 pixels a folder may take before it is streamed instead
STAT_SAMPLES = 20000  # images used to estimate the per-channel mean and std


class DataError(Exception):
    """The data cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class DataMeta:
    """What the model must fit, known before loading any pixels."""

    name: str
    shape: tuple[int, int, int]  # C, H, W after resizing
    num_classes: int
    class_names: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=(), compare=False)  # e.g. empty classes, links not followed


@dataclass
class Split:
    """Images in memory: x uint8 N×C×H×W, y int64 N (torch tensors, on any device)."""

    x: Any
    y: Any

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class DataBundle:
    meta: DataMeta
    train: Any  # Split, or a torch Dataset yielding (uint8 C×H×W tensor, label) when streamed
    val: Any | None
    test: Any
    mean: tuple[float, ...]
    std: tuple[float, ...]
    in_memory: bool
    skipped: list[str] = field(default_factory=list)  # "path: reason" for unreadable images
    notes: list[str] = field(default_factory=list)
    key: tuple = ()  # TrainConfig.data_key() it was loaded for

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.meta.shape

    def to(self, device) -> DataBundle:
        """The in-memory splits moved to `device` (uint8 keeps GPU memory at a quarter of float32)."""
        if not self.in_memory:
            return self
        move = lambda s: None if s is None else Split(s.x.to(device), s.y.to(device))
        return DataBundle(self.meta, move(self.train), move(self.val), move(self.test), self.mean, self.std,
                          True, self.skipped, self.notes, self.key)

    def probe(self):
        """The fixed sample shown as feature maps: the first test image (uint8 C×H×W, label)."""
        if self.in_memory:
            return self.test.x[0], int(self.test.y[0])
        x, y = self.test[0]
        return x, int(y)


def find_mnist(*folders) -> Path | None:
    """The first of `folders` (paths, or None to skip) that holds MNIST in torchvision's layout."""
    for folder in folders:
        if folder and (Path(folder) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return Path(folder)
    return None


# -- metadata without loading ---------------------------------------------------------------

_TV_META = {
    "mnist": ((1, 28, 28), tuple(str(i) for i in range(10))),
    "fashion-mnist": ((1, 28, 28), ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                    "Sneaker", "Bag", "Ankle boot")),
    "cifar10": ((3, 32, 32), ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                              "truck")),
    "cifar100": ((3, 32, 32), tuple(f"class {i}" for i in range(100))),
    "svhn": ((3, 32, 32), tuple(str(i) for i in range(10))),
}


def dataset_meta(cfg: TrainConfig) -> DataMeta:
    """Shape and classes of the configured dataset; a folder is scanned (file names and one header)."""
    name = DATASETS[cfg.dataset]
    if cfg.dataset == "shapes":
        shape = (cfg.shapes_channels, cfg.shapes_size, cfg.shapes_size)
        classes = SHAPE_CLASSES
    warnings: tuple[str, ...] = ()
    if cfg.dataset == "folder":
        scan = scan_folder(cfg.data_root)
        shape, classes, warnings = scan.shape, scan.classes, tuple(scan.notes)
    elif cfg.dataset != "shapes":
        shape, classes = _TV_META[cfg.dataset]
    if cfg.resize:
        shape = (shape[0], cfg.resize, cfg.resize)
    return DataMeta(name, tuple(shape), len(classes), tuple(classes), warnings)


# -- loading ----------------------------------------------------------------------------------

def data_for(cfg: TrainConfig, bundle: DataBundle | None) -> DataBundle:
    """`bundle` when it holds the images `cfg` asks for, else those images freshly loaded."""
    if bundle is None or bundle.key != cfg.data_key():
        return load_data(cfg)
    return bundle


def load_data(cfg: TrainConfig, should_stop: Callable[[], bool] = lambda: False) -> DataBundle:
    if cfg.dataset == "shapes":
        train, test, classes = _load_shapes(cfg)
        bundle = _in_memory(cfg, DATASETS["shapes"], train, test, classes)
    elif cfg.dataset == "folder":
        bundle = _load_folder(cfg, should_stop)
    else:
        train, test, classes = _load_torchvision(cfg)
        bundle = _in_memory(cfg, DATASETS[cfg.dataset], train, test, classes)
    if bundle.in_memory and len(bundle.train) == 0:
        raise DataError("there are no training images left after the validation split")
    bundle.key = cfg.data_key()
    return bundle


def _load_shapes(cfg: TrainConfig):
    import torch

    x, y = make_shapes(cfg.shapes_train, cfg.seed, cfg.shapes_size, cfg.shapes_channels, split=0)
    tx, ty = make_shapes(cfg.shapes_test, cfg.seed, cfg.shapes_size, cfg.shapes_channels, split=1)
    return ((torch.from_numpy(x), torch.from_numpy(y)), (torch.from_numpy(tx), torch.from_numpy(ty)),
            SHAPE_CLASSES)


def _torchvision_error(label: str, root: str, cfg: TrainConfig, exc: BaseException) -> DataError:
    from urllib.error import URLError

    if cfg.download:
        if isinstance(exc, (URLError, OSError, RuntimeError)) and not isinstance(exc, PermissionError):
            text = first_line(exc)
            reason = (getattr(exc, "reason", None) or text) if text else type(exc).__name__
            return DataError(f"{label} could not be downloaded into {root} ({reason}). Is this computer offline? "
                             f"Download it on a machine with internet access and copy the folder here, or "
                             f"choose another dataset.")
    if isinstance(exc, PermissionError):
        return DataError(f"{label}: no permission to read or write {root}: choose another data folder")
    if not isinstance(exc, (RuntimeError, FileNotFoundError)):
        # torchvision says RuntimeError ("not found or corrupted") before it reads; this failed while reading.
        return DataError(f"{label} in {root} could not be read ({_why(exc)}); its files may be damaged: "
                         f"delete them and download the dataset again")
    return DataError(f"{label} was not found in {root}. Allow downloading it (Download in the Training panel, "
                     f"--download on the command line; needs internet), or set the data folder to the directory "
                     f"that contains it (torchvision layout).")


def _load_torchvision(cfg: TrainConfig):
    import torch
    import torchvision.datasets as tvd

    root = cfg.resolved_root()
    label = DATASETS[cfg.dataset]
    if cfg.download:
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create the data folder {root} ({exc.strerror or exc})") from None
    elif not os.path.isdir(root):
        raise DataError(f"the data folder {root} does not exist: choose the folder that holds {label}, "
                        f"or allow downloading it (Download in the Training panel, --download on the command line)")
    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10,
           "cifar100": tvd.CIFAR100, "svhn": tvd.SVHN}[cfg.dataset]
    parts = []
    for train in (True, False):
        kwargs = {"split": "train" if train else "test"} if cfg.dataset == "svhn" else {"train": train}
        try:
            ds = cls(root, download=cfg.download, **kwargs)
        except ImportError as exc:  # SVHN's .mat files need SciPy
            missing = (exc.name or "a package").split(".")[0]
            raise DataError(f"{label} needs the Python package {missing} to read its files: "
                            f"pip install {missing}") from None
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, tarfile errors...
            raise _torchvision_error(label, root, cfg, exc) from None
        if cfg.dataset in ("mnist", "fashion-mnist"):
            x = ds.data.unsqueeze(1)
            y = ds.targets
        elif cfg.dataset == "svhn":
            x, y = torch.from_numpy(ds.data), torch.from_numpy(ds.labels.astype(np.int64))
        else:
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2)  # N×H×W×C -> N×C×H×W
            y = torch.as_tensor(ds.targets, dtype=torch.int64)
        parts.append((x.contiguous(), y.to(torch.int64)))
        classes = tuple(getattr(ds, "classes", None) or _TV_META[cfg.dataset][1])
    return parts[0], parts[1], classes


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed train/validation split of range(n) that depends only on the seed."""
    rng = np.random.default_rng([int(seed), 0x5A11D])
    order = rng.permutation(n)
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n_val == 0 and n > 1:
        n_val = 1
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _resize(x, size: int):
    from torchvision.transforms import v2

    if size and (x.shape[-1] != size or x.shape[-2] != size):
        # Deterministic, so one call on the whole uint8 tensor equals resizing each image.
        out = []
        for start in range(0, x.shape[0], 4096):  # bounded float temporaries
            out.append(v2.functional.resize(x[start:start + 4096], [size, size], antialias=True))
        return out[0] if len(out) == 1 else __import__("torch").cat(out)
    return x


def channel_stats(x) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units over (a fixed subset of) uint8 images."""
    import torch

    if x.shape[0] > STAT_SAMPLES:
        idx = torch.from_numpy(np.random.default_rng(0).choice(x.shape[0], STAT_SAMPLES, replace=False))
        x = x[idx]
    xf = x.to(torch.float64) / 255.0
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)  # a blank channel must not divide by zero
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _in_memory(cfg: TrainConfig, name: str, train, test, classes) -> DataBundle:
    import torch

    (x, y), (tx, ty) = train, test
    x, tx = _resize(x, cfg.resize), _resize(tx, cfg.resize)
    tr_idx, va_idx = split_indices(len(y), cfg.val_split, cfg.seed)
    if cfg.train_limit:
        tr_idx = tr_idx[:cfg.train_limit]
    tr = torch.from_numpy(tr_idx)
    train_split = Split(x[tr].contiguous(), y[tr].contiguous())
    val_split = None
    if len(va_idx):
        va = torch.from_numpy(va_idx)
        val_split = Split(x[va].contiguous(), y[va].contiguous())
    mean, std = channel_stats(train_split.x)
    meta = DataMeta(name, tuple(int(d) for d in x.shape[1:]), len(classes), tuple(classes))
    return DataBundle(meta, train_split, val_split, Split(tx.contiguous(), ty.contiguous()), mean, std, True)


# -- image folders ------------------------------------------------------------------------------

@dataclass
class FolderScan:
    root: Path
    classes: tuple[str, ...]
    files: dict[str, list[tuple[str, int]]]  # split name -> (path, class index)
    shape: tuple[int, int, int]  # most common C, H, W among the sampled headers
    skipped: list[str]
    notes: list[str] = field(default_factory=list)  # links not followed, empty classes


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _inside(path: str, folder: str) -> bool:
    """Is the real path `path` the real folder `folder` or below it?"""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class _Walker:
    """Lists an image folder without being fooled by links.

    A link is followed only where it stays inside the folder being listed: inside the image folder
    for a split or class folder, inside its own class folder below that (so no image is labelled
    with another class's name, and a link to the root or a parent cannot loop). Each real folder is
    read once, and each real image counted once, the first time it is reached (splits in the order
    train, val, test; classes and names alphabetically)."""

    def __init__(self, root: Path):
        self.root = os.path.realpath(root)
        self.seen_dirs: set[str] = set()
        self.file_links = False  # seen_dirs keeps folders unique; only a link to a file can repeat an image
        self.out_of_bounds: list[str] = []  # links not followed: they leave their folder
        self.repeats: list[str] = []  # links to folders or images already read
        self.unreadable: list[str] = []  # "path: reason" for folders that cannot be listed

    def _listing(self, path: str) -> list[os.DirEntry]:
        try:
            with os.scandir(path) as it:
                return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as exc:
            self.unreadable.append(f"{path}: {exc.strerror or _why(exc)}")
            return []

    def top_dirs(self, path: Path, avoid: tuple[str, ...] = ()) -> list[Path]:
        """Sub-folders of the root or a split folder; a link must lead to a folder inside the root
        that holds neither the root nor any folder in `avoid` (the splits)."""
        out = []
        for e in self._listing(str(path)):
            try:
                if not e.is_dir():
                    continue
            except OSError:
                continue
            if e.is_symlink():
                real = os.path.realpath(e.path)
                if not _inside(real, self.root) or real == self.root or any(_inside(a, real) for a in avoid):
                    self.out_of_bounds.append(e.path)
                    continue
            out.append(Path(e.path))
        return out

    def images(self, folder: Path) -> list[tuple[str, str]]:
        """(path, real path) of every image under one class folder, depth first in name order."""
        real = os.path.realpath(folder)
        if real in self.seen_dirs:
            self.repeats.append(str(folder))
            return []
        self.seen_dirs.add(real)
        boundary = real
        out: list[tuple[str, str]] = []
        stack = [(str(folder), real)]
        while stack:
            path, rpath = stack.pop()
            subdirs = []
            for e in self._listing(path):
                try:
                    if e.is_symlink():
                        target = os.path.realpath(e.path)
                        if not _inside(target, boundary):
                            self.out_of_bounds.append(e.path)
                        elif os.path.isdir(target):
                            if target in self.seen_dirs:
                                self.repeats.append(e.path)
                            else:
                                self.seen_dirs.add(target)
                                subdirs.append((e.path, target))
                        elif _is_image_name(e.name):
                            self.file_links = True
                            out.append((e.path, target))  # a broken link is listed as unreadable later
                    elif e.is_dir(follow_symlinks=False):
                        sub = os.path.join(rpath, e.name)
                        if sub not in self.seen_dirs:  # reached before through a link
                            self.seen_dirs.add(sub)
                            subdirs.append((e.path, sub))
                    elif _is_image_name(e.name):
                        out.append((e.path, os.path.join(rpath, e.name)))
                except OSError as exc:
                    self.unreadable.append(f"{e.path}: {exc.strerror or _why(exc)}")
            stack.extend(reversed(subdirs))
        return out

    def notes(self) -> list[str]:
        out = []
        for items, what in ((self.out_of_bounds, "link(s) leading out of their folder were not followed"),
                            (self.repeats, "link(s) to folders already read were not read again")):
            if items:
                more = f", … ({len(items) - 5} more)" if len(items) > 5 else ""
                out.append(f"{len(items)} {what}: {', '.join(items[:5])}{more}")
        return out


def scan_folder(root: str) -> FolderScan:
    """ImageFolder layout: root/<class>/<images>, or root/train/<class>/... with root/val|test/<class>/...

    Only file names and a few headers are read, so this is quick enough for a settings panel."""
    if not root:
        raise DataError("choose the folder that holds your images (one subfolder per class)")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"the image folder {base} does not exist")
    walker = _Walker(base)
    try:
        with os.scandir(base):
            pass
    except OSError as exc:
        raise DataError(f"cannot read {base} ({exc.strerror or exc})") from None
    top = walker.top_dirs(base)
    names = {p.name.lower(): p for p in top}
    split_dirs = {s: names[s] for s in ("train", "val", "valid", "validation", "test") if s in names}
    if "train" in split_dirs:
        splits = {"train": split_dirs["train"]}
        for key, alias in (("val", ("val", "valid", "validation")), ("test", ("test",))):
            found = next((split_dirs[a] for a in alias if a in split_dirs), None)
            if found is not None:
                splits[key] = found
        avoid = tuple(os.path.realpath(p) for p in splits.values())
        classes = tuple(p.name for p in walker.top_dirs(splits["train"], avoid))
    else:
        classes = tuple(p.name for p in top)
        splits = {"all": base}
        avoid = ()
    if len(classes) < 2:
        raise DataError(f"{base} needs at least two class folders (one subfolder per class, holding its images); "
                        f"found {len(classes)}")
    files: dict[str, list[tuple[str, int]]] = {}
    for split, path in splits.items():
        allowed = {p.name for p in walker.top_dirs(path, avoid)} if split in ("val", "test") else set(classes)
        items: list[tuple[str, str, int]] = []
        for i, c in enumerate(classes):
            if c in allowed:
                items.extend((f, real, i) for f, real in walker.images(path / c))
        files[split] = items
    if walker.file_links:
        seen: set[str] = set()
        for split, items in files.items():
            files[split] = [it for it in items if not (it[1] in seen or seen.add(it[1]))]
    files = {split: [(f, i) for f, _, i in items] for split, items in files.items()}
    if not any(files.values()):
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS[:4])}, ...) found under {base}")
    notes = walker.notes() + _empty_classes(files, classes, splits)
    shape, skipped = _probe_headers([f for items in files.values() for f, _ in items[:: max(1, len(items) // 50)]])
    return FolderScan(base, classes, files, shape, walker.unreadable + skipped, notes)


def _empty_classes(files, classes, splits) -> list[str]:
    """A class with no images still gets an output the model never learns: say so, do not stop."""
    out = []
    for split, items in files.items():
        counts = Counter(i for _, i in items)
        empty = [c for i, c in enumerate(classes) if not counts[i]]
        if not empty or (split != "all" and split != "train" and not items):
            continue
        where = "" if split == "all" else f" in {splits[split].name}/"
        names = ", ".join(empty[:10]) + (f", … ({len(empty) - 10} more)" if len(empty) > 10 else "")
        out.append(f"no images for class(es) {names}{where}" +
                   (": the model keeps an output for each that it never learns to predict"
                    if split in ("all", "train") else ""))
    return out


def _probe_headers(paths: list[str]) -> tuple[tuple[int, int, int], list[str]]:
    from PIL import Image

    shapes: Counter = Counter()
    skipped = []
    for p in paths[:64]:
        try:
            with Image.open(p) as im:
                c = 1 if im.mode in ("1", "L", "I", "I;16", "F") else 3
                shapes[(c, im.height, im.width)] += 1
        except Exception as exc:
            skipped.append(f"{p}: {_why(exc)}")
    if not shapes:
        raise DataError("none of the images could be read: " + "; ".join(skipped[:3]))
    # Colour wins if any sampled image has colour; the size is the most common one.
    chans = 3 if any(c == 3 for c, _, _ in shapes) else 1
    size = Counter({(h_, w_): n for (c_, h_, w_), n in shapes.items()}).most_common(1)[0][0]
    return (chans, size[0], size[1]), skipped


def _why(exc: BaseException) -> str:
    text = first_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def decode_image(path: str, channels: int, size: tuple[int, int]):
    """One image as a uint8 C×H×W tensor via torchvision.transforms.v2 (raises on a broken file)."""
    from PIL import Image
    from torchvision.transforms import v2

    with Image.open(path) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        t = v2.functional.pil_to_tensor(im)
    if tuple(t.shape[-2:]) != tuple(size):
        t = v2.functional.resize(t, list(size), antialias=True)
    return t


class FolderDataset:
    """Streams a folder too large for memory; decoded and resized in DataLoader workers."""

    def __init__(self, items: list[tuple[str, int]], channels: int, size: tuple[int, int]):
        self.items, self.channels, self.size = items, channels, size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        import torch

        path, label = self.items[i]
        try:
            return decode_image(path, self.channels, self.size), label
        except Exception:
            # Broken after the scan (a file changed mid-run): a blank image keeps the batch shape.
            return torch.zeros((self.channels, *self.size), dtype=torch.uint8), label


def _decode_all(items, channels, size, should_stop, skipped):
    import torch

    def one(item):
        try:
            return decode_image(item[0], channels, size), item[1]
        except Exception as exc:  # PIL raises many types for garbage files
            return None, f"{item[0]}: {_why(exc)}"

    xs, ys = [], []
    workers = max(1, min(8, (os.cpu_count() or 2)))
    with ThreadPoolExecutor(workers) as pool:  # PIL decodes with the GIL released
        for start in range(0, len(items), 512):
            if should_stop():
                raise DataError("loading was stopped")
            for t, lab in pool.map(one, items[start:start + 512]):
                if t is None:
                    skipped.append(lab)
                else:
                    xs.append(t)
                    ys.append(lab)
    if not xs:
        return torch.empty((0, channels, *size), dtype=torch.uint8), torch.empty((0,), dtype=torch.int64)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


def _load_folder(cfg: TrainConfig, should_stop) -> DataBundle:
    scan = scan_folder(cfg.data_root)
    c, h, w = scan.shape
    if cfg.resize:
        h = w = cfg.resize
    skipped = list(scan.skipped)
    notes = list(scan.notes)
    meta = DataMeta(DATASETS["folder"], (c, h, w), len(scan.classes), scan.classes, tuple(scan.notes))
    files = scan.files
    pool = files.get("train", files.get("all", []))
    tr_idx, va_idx = split_indices(len(pool), 0.0 if "val" in files else cfg.val_split, cfg.seed)
    train_items = [pool[i] for i in tr_idx]
    val_items = files["val"] if "val" in files else [pool[i] for i in va_idx]
    if cfg.train_limit:
        train_items = train_items[:cfg.train_limit]
    if "test" in files:
        test_items = files["test"]
    else:
        test_items = val_items
        notes.append("no test/ folder: the final evaluation uses the validation images")
    total = (len(train_items) + len(val_items) + (len(test_items) if "test" in files else 0)) * c * h * w
    if total <= IN_MEMORY_LIMIT:
        splits = {}
        for key, items in (("train", train_items), ("val", val_items), ("test", test_items)):
            if key == "test" and "test" not in files:
                splits["test"] = splits["val"]
                continue
            x, y = _decode_all(items, c, (h, w), should_stop, skipped)
            splits[key] = Split(x, y)
        if len(splits["train"]) == 0:
            raise DataError("none of the training images could be read" +
                            (": " + "; ".join(skipped[:3]) if skipped else ""))
        if len(splits["test"]) == 0:
            splits["test"] = splits["train"]
            notes.append("no readable validation or test images: the final evaluation uses the training images")
        mean, std = channel_stats(splits["train"].x)
        val = splits["val"] if len(splits["val"]) else None
        return DataBundle(meta, splits["train"], val, splits["test"], mean, std, True, _dedupe(skipped), notes)

    # Streamed: drop unreadable files up front (headers only) so batches keep their labels right.
    train_items = _readable(train_items, skipped, should_stop)
    val_items = _readable(val_items, skipped, should_stop)
    test_items = _readable(test_items, skipped, should_stop) if "test" in files else val_items
    if not train_items:
        raise DataError("none of the training images could be read")
    sample = train_items[:: max(1, len(train_items) // 2000)]
    x, _ = _decode_all(sample, c, (h, w), should_stop, [])
    mean, std = channel_stats(x)
    notes.append(f"{len(train_items):,} training images do not fit in memory: they are read from disk")
    test_ds = FolderDataset(test_items or train_items, c, (h, w))
    return DataBundle(meta, FolderDataset(train_items, c, (h, w)),
                      FolderDataset(val_items, c, (h, w)) if val_items else None, test_ds, mean, std, False,
                      _dedupe(skipped), notes)


def _readable(items, skipped, should_stop):
    from PIL import Image

    out = []
    for k, (path, lab) in enumerate(items):
        if k % 1000 == 0 and should_stop():
            raise DataError("loading was stopped")
        try:
            with Image.open(path) as im:
                im.verify()
            out.append((path, lab))
        except Exception as exc:
            skipped.append(f"{path}: {_why(exc)}")
    return out


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# -- does the model fit the data? -------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    node_id: str | None
    message: str
    param: str | None = None  # the parameter that fixes it, and its value
    value: Any = None


def check_fit(graph, analysis, meta: DataMeta) -> list[Mismatch]:
    """Input shape against the images, output size against the classes. Empty when they fit.
    Each mismatch names the block and, where one edit fixes it, the parameter and value to set."""
    from ..blocks import fmt_shape

    out: list[Mismatch] = []
    if not analysis.ok or analysis.input_id is None:
        return out
    want = tuple(meta.shape)
    have = tuple(analysis.input_shape or ())
    if have != want:
        out.append(Mismatch(analysis.input_id,
                            f"{meta.name} images are {fmt_shape(want)} (channels×height×width) but the Input "
                            f"block takes {fmt_shape(have)}: set the Input shape to {fmt_shape(want)}"
                            + (" or resize the images" if len(have) == 3 and have[0] == want[0] else ""),
                            "shape", list(want)))
    oshape = tuple(analysis.output_shape or ())
    k = meta.num_classes
    if oshape != (k,):
        if len(oshape) == 1:
            msg = (f"the model gives {oshape[0]} outputs per image but {meta.name} has {k} classes: "
                   f"make the last layer produce {k} values")
        else:
            msg = (f"the model's output is {fmt_shape(oshape)} per image; a classifier for {meta.name} must "
                   f"end in {k} values (add Flatten and a Linear with out_features={k})")
        node = graph.node(analysis.output_id)
        if node.type == "Linear" and len(oshape) == 1:
            out.append(Mismatch(analysis.output_id, msg, "out_features", k))
        else:
            out.append(Mismatch(analysis.output_id, msg))
    return out
