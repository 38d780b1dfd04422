"""Each batched augmentation step equals its torchvision.transforms.v2 counterpart applied to one
image at a time with that image's parameters, so per-image randomness costs no fidelity."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from cnnbuilder.core.training import augment as A
from cnnbuilder.core.training.augment import BatchTransform, batch_generator
from cnnbuilder.core.training.config import TrainConfig


def images(n=12, c=3, h=9, w=13, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("c", [1, 3])
def test_random_crop_matches_v2_crop_of_the_padded_image(c):
    x = images(c=c)
    p = 3
    top = torch.randint(0, 2 * p + 1, (len(x),))
    left = torch.randint(0, 2 * p + 1, (len(x),))
    out = A.random_crop(x, top, left, p)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    for i in range(len(x)):
        ref = TF.crop(TF.pad(x[i], [p]), int(top[i]), int(left[i]), x.shape[2], x.shape[3])
        assert torch.equal(out[i], ref)
    # and v2.RandomCrop itself draws from exactly this family of crops
    seen = v2.RandomCrop((9, 13), padding=p)(x[0])
    assert any(torch.equal(seen, A.random_crop(x[:1], torch.tensor([t]), torch.tensor([le]), p)[0])
               for t in range(2 * p + 1) for le in range(2 * p + 1))


def test_hflip_matches_v2_per_image():
    x = images()
    mask = torch.arange(len(x)) % 3 == 0
    out = A.hflip(x, mask)
    for i in range(len(x)):
        assert torch.equal(out[i], TF.horizontal_flip(x[i]) if mask[i] else x[i])


@pytest.mark.parametrize("shape", [(3, 16, 16), (1, 12, 20), (3, 21, 10)])
def test_rotate_matches_v2_bilinear_rotate(shape):
    x = images(n=8, c=shape[0], h=shape[1], w=shape[2]).float() / 255
    angles = torch.tensor([0.0, 90.0, -90.0, 30.0, -17.5, 180.0, 7.0, -45.0])
    out = A.rotate(x, angles)
    for i in range(len(x)):
        ref = TF.rotate(x[i], float(angles[i]), interpolation=v2.InterpolationMode.BILINEAR)
        torch.testing.assert_close(out[i], ref, atol=2e-5, rtol=0)


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("step,kernel", [("brightness", TF.adjust_brightness), ("contrast", TF.adjust_contrast),
                                         ("saturation", TF.adjust_saturation)])
def test_colour_jitter_steps_match_v2(c, step, kernel):
    x = images(c=c).float() / 255
    factors = torch.linspace(0.1, 1.9, len(x))
    out = getattr(A, f"adjust_{step}")(x, factors)
    for i in range(len(x)):
        torch.testing.assert_close(out[i], kernel(x[i], float(factors[i])), atol=1e-6, rtol=0)


@pytest.mark.parametrize("c", [1, 3])
def test_hue_matches_v2(c):
    x = images(n=16, c=c).float() / 255
    x[0] = 0.5  # grey: no hue to turn
    x[1, :, 0, 0] = torch.tensor([1.0, 1.0, 0.0])[:c]  # ties between the largest channels
    shifts = torch.linspace(-0.5, 0.5, len(x))
    out = A.adjust_hue(x, shifts)
    for i in range(len(x)):
        torch.testing.assert_close(out[i], TF.adjust_hue(x[i], float(shifts[i])), atol=1e-5, rtol=0)


def test_every_augmentation_draws_per_image_and_replays_per_batch():
    x = images(n=64, c=3, h=16, w=16)
    cfg = TrainConfig(crop_padding=2, hflip=True, rotation=20, color_jitter=0.4, hue=0.1, normalize=False)
    t = BatchTransform(cfg, [0.0] * 3, [1.0] * 3, 3, "cpu")
    a = t(x, train=True, generator=batch_generator(0, 0, 0))
    assert a.shape == (64, 3, 16, 16) and a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, t(x, train=True, generator=batch_generator(0, 0, 0)))
    # the same image repeated comes out different within one batch: per-image parameters
    same = t(x[:1].expand(32, -1, -1, -1).contiguous(), train=True, generator=batch_generator(0, 0, 1))
    assert len({tuple(img.flatten()[:64].tolist()) for img in same}) == 32


@pytest.mark.parametrize("field,value", [("hue", 0.6), ("hue", -0.1), ("color_jitter", 1.0), ("rotation", 181)])
def test_out_of_range_augmentation_is_rejected_by_name(field, value):
    from cnnbuilder.core.training.config import ConfigError

    with pytest.raises(ConfigError, match=field):
        TrainConfig.from_dict({field: value}, strict=True)
