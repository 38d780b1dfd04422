"""Training data: the built-in shapes, torchvision datasets (missing, offline), image folders with
broken files, the fit check between model and data, and the batch transform."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnbuilder.core.project import load_project
from cnnbuilder.core.shapes import analyze
from cnnbuilder.core.training.augment import BatchTransform, batch_generator, epoch_permutation
from cnnbuilder.core.training.config import ConfigError, TrainConfig
from cnnbuilder.core.training.data import DataError, check_fit, dataset_meta, load_data, scan_folder
from cnnbuilder.core.training.synthetic import CLASSES, make_shapes

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


# -- config -------------------------------------------------------------------------------------

def test_config_round_trip_and_tolerant_loading():
    cfg = TrainConfig(dataset="mnist", lr=0.01, epochs=3, hflip=True)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    loose = TrainConfig.from_dict({"lr": "0.5", "epochs": -2, "optimizer": "adagrad", "bogus": 1, "hflip": "yes"})
    assert loose.lr == 0.5 and loose.hflip is True
    assert loose.epochs == TrainConfig().epochs and loose.optimizer == "adam"
    assert len(loose.notes) == 3 and any("bogus" in n for n in loose.notes)


def test_config_strict_names_the_bad_setting():
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig.from_dict({"batch_size": 0}, strict=True)
    with pytest.raises(ConfigError, match="device"):
        TrainConfig().replace(device="tpu")
    assert TrainConfig().replace(device="CUDA:1").device == "cuda:1"


# -- shapes -------------------------------------------------------------------------------------

def test_shapes_are_deterministic_balanced_uint8():
    x, y = make_shapes(500, seed=3)
    x2, y2 = make_shapes(500, seed=3)
    x3, _ = make_shapes(500, seed=4)
    assert x.shape == (500, 1, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, x3)
    assert np.bincount(y, minlength=10).tolist() == [50] * 10
    assert len(CLASSES) == 10
    # Every class actually draws a figure: bright pixels well above the background.
    for k in range(10):
        imgs = x[y == k].astype(np.float32)
        assert (imgs.max(axis=(1, 2, 3)) - np.median(imgs, axis=(1, 2, 3))).min() > 60


def test_shapes_colour_and_size():
    x, _ = make_shapes(40, seed=0, size=32, channels=3)
    assert x.shape == (40, 3, 32, 32)
    assert not np.array_equal(x[:, 0], x[:, 1])  # real colour, not grey copied three times


def test_shapes_bundle_split_and_stats():
    cfg = TrainConfig(shapes_train=1000, shapes_test=200, val_split=0.2)
    b = load_data(cfg)
    assert b.in_memory and len(b.train) == 800 and len(b.val) == 200 and len(b.test) == 200
    assert b.train.x.dtype == torch.uint8 and tuple(b.train.x.shape[1:]) == (1, 28, 28)
    assert b.meta.num_classes == 10 and b.meta.class_names[0] == "circle"
    assert 0.05 < b.mean[0] < 0.6 and 0.05 < b.std[0] < 0.6
    assert dataset_meta(cfg).shape == b.shape
    limited = load_data(cfg.replace(train_limit=100, resize=20))
    assert len(limited.train) == 100 and limited.shape == (1, 20, 20)


# -- torchvision datasets -----------------------------------------------------------------------

def test_missing_dataset_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match="not found in") as info:
        load_data(TrainConfig(dataset="mnist", data_root=str(tmp_path)))
    assert "Download" in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        load_data(TrainConfig(dataset="cifar10", data_root=str(tmp_path / "nowhere")))


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_offline_download_is_a_clear_message(tmp_path, monkeypatch, dataset):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as info:
        load_data(TrainConfig(dataset=dataset, data_root=str(tmp_path), download=True))
    msg = str(info.value)
    assert "could not be downloaded" in msg and "offline" in msg and str(tmp_path) in msg
    assert "Traceback" not in msg


def test_real_mnist_loads_in_memory(mnist_dir):
    b = load_data(TrainConfig(dataset="mnist", data_root=str(mnist_dir), val_split=0.1))
    assert len(b.train) == 54000 and len(b.val) == 6000 and len(b.test) == 10000
    assert b.shape == (1, 28, 28) and b.train.x.dtype == torch.uint8
    assert abs(b.mean[0] - 0.1307) < 0.005 and abs(b.std[0] - 0.3081) < 0.005


# -- image folders ------------------------------------------------------------------------------

def make_folder(root: Path, per_class: int = 6, broken: bool = True) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("cats", "dogs", "owls")):
        d = root / name
        d.mkdir(parents=True)
        for i in range(per_class):
            arr = (rng.random((12, 10, 3)) * 60 + c * 80).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{i}.png")
    if broken:
        (root / "dogs" / "garbage.png").write_bytes(b"this is not a png at all")
        (root / "owls" / "notes.txt").write_text("not an image, not counted")
    return root


def test_folder_skips_and_lists_unreadable_files(tmp_path):
    root = make_folder(tmp_path / "pets")
    scan = scan_folder(str(root))
    assert scan.classes == ("cats", "dogs", "owls") and scan.shape == (3, 12, 10)
    b = load_data(TrainConfig(dataset="folder", data_root=str(root), val_split=0.25))
    assert b.in_memory and b.meta.class_names == ("cats", "dogs", "owls")
    assert len(b.train) + len(b.val) == 18  # the garbage file is not an image of any class
    assert len(b.skipped) == 1 and "garbage.png" in b.skipped[0]
    assert b.train.x.shape[1:] == (3, 12, 10)
    assert any("validation images" in n for n in b.notes)  # no test/ folder: says what it tests on


def test_folder_with_split_subfolders_and_resize(tmp_path):
    make_folder(tmp_path / "data" / "train", broken=False)
    make_folder(tmp_path / "data" / "test", per_class=2, broken=False)
    b = load_data(TrainConfig(dataset="folder", data_root=str(tmp_path / "data"), val_split=0.5, resize=16))
    assert len(b.test) == 6 and len(b.train) == 9 and len(b.val) == 9
    assert b.shape == (3, 16, 16)


def test_folder_errors_are_messages(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_folder(str(tmp_path / "missing"))
    (tmp_path / "one").mkdir()
    with pytest.raises(DataError, match="at least two class folders"):
        scan_folder(str(tmp_path))
    with pytest.raises(DataError, match="choose the folder"):
        scan_folder("")


# -- model vs data ------------------------------------------------------------------------------

def test_fit_check_offers_the_input_and_output_fixes():
    g = load_project(EXAMPLES / "vgg_cifar10.json").graph
    meta = dataset_meta(TrainConfig())  # shapes: 1×28×28, 10 classes
    issues = check_fit(g, analyze(g), meta)
    assert len(issues) == 1
    inp = issues[0]
    assert inp.node_id == "n1" and inp.param == "shape" and inp.value == [1, 28, 28]
    assert "1×28×28" in inp.message and "3×32×32" in inp.message

    g2 = load_project(EXAMPLES / "mnist_cnn.json").graph
    meta100 = dataset_meta(TrainConfig(dataset="cifar100"))
    issues = check_fit(g2, analyze(g2), meta100)
    assert [i.param for i in issues] == ["shape", "out_features"]
    assert issues[1].value == 100 and "100 classes" in issues[1].message
    assert check_fit(g2, analyze(g2), dataset_meta(TrainConfig())) == []


# -- batch transform ----------------------------------------------------------------------------

def test_normalisation_uses_dataset_statistics():
    b = load_data(TrainConfig(shapes_train=800, shapes_test=100))
    t = BatchTransform(TrainConfig(), b.mean, b.std, 1, "cpu")
    x = t(b.train.x)
    assert x.dtype == torch.float32 and abs(float(x.mean())) < 0.01 and abs(float(x.std()) - 1) < 0.01


def test_augmentation_is_per_image_and_reproducible():
    x = torch.zeros(64, 1, 8, 8, dtype=torch.uint8)
    x[:, :, :, :2] = 255  # a bright stripe on the left
    cfg = TrainConfig(hflip=True, normalize=False)
    t = BatchTransform(cfg, [0.0], [1.0], 1, "cpu")
    out = t(x, train=True, generator=batch_generator(0, 0, 0))
    left = out[:, 0, :, :2].mean(dim=(1, 2))
    flipped = (left == 0).sum().item()
    assert 10 < flipped < 54  # about half flipped, each image on its own
    assert torch.equal(out, t(x, train=True, generator=batch_generator(0, 0, 0)))
    assert not torch.equal(out, t(x, train=True, generator=batch_generator(0, 0, 1)))
    assert torch.equal(t(x, train=False), x.float() / 255)  # evaluation: never augmented

    full = BatchTransform(TrainConfig(crop_padding=2, hflip=True, rotation=15, color_jitter=0.3), [0.5], [0.25], 1,
                          "cpu")
    y = full(x, train=True, generator=batch_generator(1, 2, 3))
    assert y.shape == x.shape and torch.isfinite(y).all()
    shifts = {tuple(full(x[:1], train=True, generator=batch_generator(0, 0, b))[0, 0, 4].tolist()) for b in range(8)}
    assert len(shifts) > 1


def test_data_order_depends_only_on_seed_and_epoch():
    assert torch.equal(epoch_permutation(1, 2, 100), epoch_permutation(1, 2, 100))
    assert not torch.equal(epoch_permutation(1, 2, 100), epoch_permutation(1, 3, 100))
    torch.manual_seed(0)
    a = epoch_permutation(5, 0, 50)
    torch.rand(10)  # the global RNG does not matter
    assert torch.equal(a, epoch_permutation(5, 0, 50))


def test_large_folder_is_streamed_through_a_dataloader(tmp_path, monkeypatch):
    from cnnbuilder.core.project import load_project
    from cnnbuilder.core.training import data
    from cnnbuilder.core.training.engine import Trainer
    from cnnbuilder.core.training.events import Finished, Notice

    root = make_folder(tmp_path / "pets", per_class=8)
    monkeypatch.setattr(data, "IN_MEMORY_LIMIT", 0)  # pretend it is too big for memory
    cfg = TrainConfig(dataset="folder", data_root=str(root), resize=28, val_split=0.25, batch_size=4, epochs=1,
                      num_workers=1)
    b = load_data(cfg)
    assert not b.in_memory and len(b.train) + len(b.val) == 24
    assert any("garbage.png" in s for s in b.skipped)
    x, y = b.train[0]
    assert x.shape == (3, 28, 28) and x.dtype == torch.uint8 and 0 <= y < 3

    g = load_project(EXAMPLES / "mnist_cnn.json").graph
    g.set_param("n1", "shape", [3, 28, 28])
    g.set_param("n9", "out_features", 3)
    events = list(Trainer(g, cfg, bundle=b).run())
    assert isinstance(events[-1], Finished), events[-1]
    notes = " ".join(e.message for e in events if isinstance(e, Notice))
    assert "read from disk" in notes and "garbage.png" in notes
    assert events[-1].confusion.sum() == 6
