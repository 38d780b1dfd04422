"""A user's image prepared as the run's data pipeline prepares its images (issue 11 §3): the same
decoding, conversion, resizing and normalisation, the notes that say what changed, and one clear
message for a file that is no usable image."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cnnbuilder.core.inspect.images import (
    ImageError,
    Preprocessing,
    display_image,
    prepare_array,
    prepare_image,
    preprocessing_for,
)
from cnnbuilder.core.training.augment import BatchTransform
from cnnbuilder.core.training.config import TrainConfig
from cnnbuilder.core.training.data import DataError, decode_image, load_data
from tests.fuzz import fuzz_settings, mutate_bytes

GRAY = Preprocessing((1, 28, 28), (0.3,), (0.2,), class_names=tuple("abcdefghij"))
COLOUR = Preprocessing((3, 32, 32), (0.4, 0.5, 0.6), (0.2, 0.25, 0.3))


def write(tmp_path, name, array, mode=None, **save):
    path = tmp_path / name
    Image.fromarray(array, mode).save(path, **save) if mode else Image.fromarray(array).save(path, **save)
    return path


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_a_colour_photo_goes_through_the_training_pipeline_for_a_grayscale_model(tmp_path):
    path = write(tmp_path, "photo.png", rgb(480, 640))
    img = prepare_image(path, GRAY)
    assert img.notes[:2] == ("converted from RGB to grayscale",
                             "resized from 640×480 to 28×28 (stretched, as training resizes its images)")
    assert "mean 0.300 and std 0.200" in img.notes[2]
    assert img.original == (640, 480) and img.x.shape == (1, 1, 28, 28) and img.x.dtype == np.float32
    # exactly what training computes from the same file: decode (convert + resize), then normalise
    raw = decode_image(str(path), 1, (28, 28))
    want = BatchTransform(TrainConfig(), GRAY.mean, GRAY.std, 1, "cpu")(raw[None]).numpy()
    np.testing.assert_array_equal(img.x, want)
    # the picture shown is the input de-normalised: the very pixels the model got
    assert img.display.shape == (28, 28, 3) and img.display.dtype == np.uint8
    np.testing.assert_array_equal(img.display[..., 0], raw[0].numpy())
    np.testing.assert_array_equal(img.display[..., 0], img.display[..., 2])


def test_grayscale_into_colour_transparency_stretching_and_frames(tmp_path):
    gray = write(tmp_path, "g.png", rgb(32, 32)[..., 0])
    img = prepare_image(gray, COLOUR)
    assert img.notes[0] == "converted from grayscale to RGB" and not any("resized" in n for n in img.notes)
    rgba = np.concatenate([rgb(20, 60), np.full((20, 60, 1), 128, np.uint8)], axis=2)
    img = prepare_image(write(tmp_path, "a.png", rgba), COLOUR)
    assert img.notes[0] == "converted from RGB with transparency to RGB (transparency dropped)"
    assert img.notes[1] == "resized from 60×20 to 32×32 (stretched, as training resizes its images)"
    frames = [Image.fromarray(rgb(32, 32, s)) for s in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    assert "the first of 3 frames" in prepare_image(gif, COLOUR).notes
    square = prepare_image(write(tmp_path, "s.png", rgb(64, 64)), COLOUR)
    assert "resized from 64×64 to 32×32" in square.notes
    same = prepare_image(write(tmp_path, "c.png", rgb(32, 32)), COLOUR)
    assert not any("converted" in n or "resized" in n for n in same.notes)


def test_without_normalisation_the_input_is_pixels_over_255(tmp_path):
    prep = Preprocessing((3, 8, 8), normalize=False)
    assert prep.mean == (0.0, 0.0, 0.0) and prep.std == (1.0, 1.0, 1.0)
    arr = rgb(8, 8)
    img = prepare_image(write(tmp_path, "x.png", arr), prep)
    np.testing.assert_allclose(img.x[0], arr.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert not any("normalised" in n for n in img.notes)
    np.testing.assert_array_equal(display_image(img.x, prep), arr)


def test_a_test_sample_array_is_prepared_the_same_way():
    raw = rgb(28, 28)[..., :1].transpose(2, 0, 1).copy()
    img = prepare_array(raw, GRAY)
    np.testing.assert_array_equal(img.display[..., 0], raw[0])
    with pytest.raises(ImageError, match="expected a uint8 image of 1×28×28"):
        prepare_array(raw.astype(np.float32), GRAY)


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no such file"),
    (lambda p: (p.mkdir(), p)[1], "is a folder, not an image"),
    (lambda p: (p.write_text("just some text"), p)[1], "not an image"),
    (lambda p: (p.write_bytes(b""), p)[1], "not an image"),
])
def test_unreadable_files_get_one_message_naming_them(tmp_path, make, message):
    path = make(tmp_path / "picture.png")
    with pytest.raises(ImageError, match=message) as err:
        prepare_image(path, GRAY)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_truncated_image_is_called_damaged(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(rgb(64, 64)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match=r"cut\.png: damaged image"):
        prepare_image(path, GRAY)


_VALID = io.BytesIO()
Image.fromarray(rgb(16, 16)).save(_VALID, "PNG")
_JPEG = io.BytesIO()
Image.fromarray(rgb(16, 16)).save(_JPEG, "JPEG")


@given(seed=st.integers(0, 2**32), base=st.sampled_from([_VALID.getvalue(), _JPEG.getvalue()]),
       rounds=st.integers(1, 4))
@fuzz_settings(default=60, long=2000)
def test_mutated_image_files_are_read_or_refused_with_a_message(tmp_path_factory, seed, base, rounds):
    r = random.Random(seed)
    raw = base
    for _ in range(rounds):
        raw = mutate_bytes(raw, r)
    path = tmp_path_factory.mktemp("img") / "x.png"
    path.write_bytes(raw)
    try:
        img = prepare_image(path, GRAY)
    except ImageError as exc:
        assert str(exc).startswith(str(path))
        return
    assert img.x.shape == (1, 1, 28, 28) and np.isfinite(img.x).all()


def test_bad_normalisation_values_are_refused():
    with pytest.raises(ImageError, match="one mean and one std per channel"):
        Preprocessing((3, 8, 8), (0.5,), (0.2,))
    with pytest.raises(ImageError, match="positive"):
        Preprocessing((1, 8, 8), (0.5,), (0.0,))
    with pytest.raises(ImageError, match="positive"):
        Preprocessing((1, 8, 8), (float("nan"),), (1.0,))


def test_preprocessing_of_a_run_uses_the_training_images_statistics():
    cfg = TrainConfig(shapes_train=300, shapes_test=20, shapes_size=16)
    prep = preprocessing_for(cfg, (1, 16, 16))
    bundle = load_data(cfg)
    assert prep.mean == bundle.mean and prep.std == bundle.std
    assert prep.class_names == bundle.meta.class_names and len(prep.class_names) == 10
    assert preprocessing_for(cfg, (1, 16, 16), bundle=bundle) == prep
    given_ = preprocessing_for(cfg, (1, 16, 16), mean=[0.1], std=[0.2])
    assert (given_.mean, given_.std) == ((0.1,), (0.2,))
    named = preprocessing_for(cfg, (1, 16, 16), bundle=bundle, class_names=["cat", "dog"])
    assert named.class_names == ("cat", "dog")  # a run record's own names win
    plain = preprocessing_for(TrainConfig(normalize=False), (1, 28, 28))
    assert plain.mean == (0.0,) and plain.std == (1.0,)
    with pytest.raises(ImageError, match="C×H×W"):
        preprocessing_for(cfg, (10,))


def test_missing_data_for_the_statistics_is_a_data_error(tmp_path):
    cfg = TrainConfig(dataset="mnist", data_root=str(tmp_path / "none"))
    with pytest.raises(DataError, match="does not exist"):
        preprocessing_for(cfg, (1, 28, 28))
    # with the statistics given nothing needs loading
    prep = preprocessing_for(cfg, (1, 28, 28), mean=[0.13], std=[0.31])
    assert prep.class_names == tuple(str(i) for i in range(10))


def test_tensor_gives_a_torch_copy():
    img = prepare_array(np.zeros((1, 28, 28), np.uint8), GRAY)
    t = img.tensor()
    assert isinstance(t, torch.Tensor) and t.shape == (1, 1, 28, 28)
    t += 1
    assert not np.shares_memory(img.x, t.numpy())
