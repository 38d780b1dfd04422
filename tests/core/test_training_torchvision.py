"""CIFAR-10, CIFAR-100 and SVHN through torchvision's own loaders, on small files written in each
dataset's exact on-disk layout (the real archives are not available offline). Only torchvision's
MD5 checks are bypassed; the parsing, the channel order, labels and class names are the real ones."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnbuilder.core.training.config import TrainConfig
from cnnbuilder.core.training.data import DataError, check_fit, load_data

N_TRAIN, N_TEST = 20, 10


@pytest.fixture
def no_md5(monkeypatch):
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.svhn as svhn

    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    monkeypatch.setattr(svhn, "check_integrity", lambda *a, **k: True)


def pixels(n, seed):
    """N×3×32×32 uint8 whose channel and position can be read back from the value."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    x[:, 0, 0, 0], x[:, 1, 0, 0], x[:, 2, 0, 0] = 10, 20, 30  # top-left pixel: R, G, B
    return x


def write_cifar(root, hundred=False):
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key = "fine_labels" if hundred else "labels"
    classes = 100 if hundred else 10
    expected = {}
    names = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        test = name.startswith("test")
        n = N_TEST if test else N_TRAIN // (1 if hundred else 5)
        x = pixels(n, k)
        y = [(k * 7 + i) % classes for i in range(n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x.reshape(n, -1), key: y}, f)  # the CIFAR layout: rows of R, G, B planes
        expected.setdefault("test" if test else "train", []).append((x, y))
    meta_name, meta_key = ("meta", "fine_label_names") if hundred else ("batches.meta", "label_names")
    with open(folder / meta_name, "wb") as f:
        pickle.dump({meta_key: [f"thing{i}" for i in range(classes)]}, f)
    return {k: (np.concatenate([x for x, _ in v]), sum((y for _, y in v), [])) for k, v in expected.items()}


def write_svhn(root):
    from scipy.io import savemat

    expected = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        x = pixels(n, 3 if split == "train" else 4)
        digits = np.arange(n) % 10
        labels = np.where(digits == 0, 10, digits).reshape(n, 1)  # SVHN stores the digit 0 as label 10
        savemat(root / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": labels})  # H×W×C×N
        expected[split] = (x, digits.tolist())
    return expected


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "svhn"])
def test_colour_datasets_load_in_channel_first_order(dataset, tmp_path, no_md5):
    expected = write_svhn(tmp_path) if dataset == "svhn" else write_cifar(tmp_path, dataset == "cifar100")
    cfg = TrainConfig(dataset=dataset, data_root=str(tmp_path), val_split=0.0)
    b = load_data(cfg)
    assert b.in_memory and b.shape == (3, 32, 32)
    assert b.meta.num_classes == (100 if dataset == "cifar100" else 10)
    if dataset.startswith("cifar"):
        assert b.meta.class_names[:2] == ("thing0", "thing1")
    for split in ("train", "test"):
        x, y = expected[split]
        got = getattr(b, split)
        assert got.x.dtype == torch.uint8 and tuple(got.x.shape) == x.shape
        assert torch.equal(got.x, torch.from_numpy(x)) and got.y.tolist() == y
        assert got.x[:, :, 0, 0].tolist() == [[10, 20, 30]] * len(x)
    assert all(0 < m < 1 for m in b.mean) and len(b.std) == 3


def test_validation_split_and_resize_apply_to_cifar(tmp_path, no_md5):
    write_cifar(tmp_path)
    b = load_data(TrainConfig(dataset="cifar10", data_root=str(tmp_path), val_split=0.25, resize=16))
    assert (len(b.train), len(b.val), len(b.test)) == (15, 5, N_TEST)
    assert b.shape == (3, 16, 16) and tuple(b.train.x.shape[1:]) == (3, 16, 16)


def test_the_vgg_example_fits_cifar10_and_trains_on_it(tmp_path, no_md5):
    from cnnbuilder.core.project import load_project
    from cnnbuilder.core.shapes import analyze
    from cnnbuilder.core.training.engine import Trainer

    write_cifar(tmp_path)
    project = load_project(Path(__file__).resolve().parents[2] / "resources" / "examples" / "vgg_cifar10.json")
    cfg = TrainConfig(dataset="cifar10", data_root=str(tmp_path), val_split=0.0, epochs=1, batch_size=8,
                      device="cpu", crop_padding=4, hflip=True, hue=0.05)
    bundle = load_data(cfg)
    assert check_fit(project.graph, analyze(project.graph), bundle.meta) == []
    events = list(Trainer(project.graph, cfg, bundle=bundle).run())
    kinds = {type(e).__name__ for e in events}
    assert "Finished" in kinds, [e for e in events if type(e).__name__ == "Failed"]


def test_svhn_without_scipy_names_the_missing_package(tmp_path, no_md5, monkeypatch):
    import builtins

    write_svhn(tmp_path)
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ModuleNotFoundError("No module named 'scipy'", name="scipy")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.raises(DataError, match="SVHN needs the Python package scipy.*pip install scipy"):
        load_data(TrainConfig(dataset="svhn", data_root=str(tmp_path)))


def test_corrupt_cifar_file_is_a_message(tmp_path, no_md5):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="CIFAR-10 in .* could not be read .*damaged"):
        load_data(TrainConfig(dataset="cifar10", data_root=str(tmp_path)))
