"""Normalisation and augmentation of whole uint8 batches on the training device.

torchvision.transforms.v2 draws one set of random parameters per call, so applied to a batch
tensor it would flip, crop or rotate every image the same way. Here each image gets its own
parameters, drawn from a CPU generator seeded per batch (so a resumed run sees the very same
augmentations), and each step is one vectorised pass over the batch. Every step computes what its
torchvision.transforms.v2 counterpart computes for one image with that image's parameters (tests
check them image by image against `v2.functional`): RandomCrop(size, padding=p) with zero fill,
RandomHorizontalFlip, RandomRotation with bilinear interpolation, and ColorJitter (brightness,
contrast, saturation, hue, in that fixed order). Resizing and decoding use v2 directly.
"""

from __future__ import annotations

from .config import TrainConfig

# ITU-R 601-2 luma, the weights v2.functional.rgb_to_grayscale uses
_LUMA = (0.2989, 0.587, 0.114)


class BatchTransform:
    def __init__(self, cfg: TrainConfig, mean, std, channels: int, device):
        import torch

        self.cfg = cfg
        self.device = torch.device(device)
        self.channels = channels
        if cfg.normalize:
            self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        else:
            self.mean, self.std = [0.0] * channels, [1.0] * channels
        # x / 255 then (x - mean) / std, folded into one multiply-add per element.
        self._std_t = torch.tensor(self.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._mean_t = torch.tensor(self.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._scale = (1.0 / 255.0) / self._std_t
        self._shift = -self._mean_t / self._std_t

    def __call__(self, x, train: bool = False, generator=None, memory_format=None):
        """uint8 N×C×H×W -> normalised float32 (augmented when `train` and augmentation is set)."""
        import torch

        if train and self.cfg.augments:
            # what v2.functional.normalize computes, with the mean and std already on the device
            xf = self.augment(x, generator).sub_(self._mean_t).div_(self._std_t)
        else:
            xf = torch.addcmul(self._shift, x.to(torch.float32), self._scale)
        if memory_format is not None:
            xf = xf.contiguous(memory_format=memory_format)
        return xf

    def draw(self, n: int, generator) -> dict:
        """Every random parameter of a batch of n, drawn on the CPU in a fixed order (so a run
        replays the same augmentations on any device)."""
        import torch

        cfg, g = self.cfg, generator
        rand = lambda: torch.rand(n, generator=g)
        d = {}
        if cfg.crop_padding:
            p = cfg.crop_padding
            d["top"] = torch.randint(0, 2 * p + 1, (n,), generator=g)
            d["left"] = torch.randint(0, 2 * p + 1, (n,), generator=g)
        if cfg.hflip:
            d["flip"] = rand() < 0.5
        if cfg.rotation:
            d["angle"] = (rand() * 2 - 1) * cfg.rotation
        if cfg.color_jitter:
            j = cfg.color_jitter
            for name in ("brightness", "contrast", "saturation"):
                d[name] = 1 - j + 2 * j * rand()
        if cfg.hue:
            d["hue"] = (rand() * 2 - 1) * cfg.hue
        return d

    def augment(self, x, generator):
        """uint8 N×C×H×W -> float32 in [0, 1], each image with its own random parameters."""

        d = _to_device(self.draw(x.shape[0], generator), x.device)
        return apply_augmentation(x, d, self.cfg.crop_padding)


def apply_augmentation(x, d: dict, crop_padding: int):
    """uint8 N×C×H×W -> float32 in [0, 1], with the drawn per-image parameters `d` (also copied
    into the exported training script, so both augment with this one function)."""
    import torch

    if "top" in d:
        x = random_crop(x, d["top"], d["left"], crop_padding)
    if "flip" in d:
        x = hflip(x, d["flip"])
    x = x.to(torch.float32).div_(255.0)
    if "angle" in d:
        x = rotate(x, d["angle"])
    if "brightness" in d:
        x = adjust_brightness(x, d["brightness"])
        x = adjust_contrast(x, d["contrast"])
        x = adjust_saturation(x, d["saturation"])
    if "hue" in d:
        x = adjust_hue(x, d["hue"])
    return x


def _to_device(draws: dict, device) -> dict:
    """The draws on `device` in one copy instead of one per parameter (each copy of a CPU tensor
    to a GPU waits for the queued GPU work)."""
    import torch

    if not draws or torch.device(device).type == "cpu":
        return draws
    # float64 holds the int64 offsets, the booleans and the float32 values exactly
    packed = torch.stack([v.to(torch.float64) for v in draws.values()]).to(device)
    return {k: row.to(v.dtype) for (k, v), row in zip(draws.items(), packed, strict=True)}


# -- batched kernels: one parameter per image ------------------------------------------------------

def random_crop(x, top, left, padding: int):
    """Image i becomes pad(x[i], padding)[top[i] : top[i] + H, left[i] : left[i] + W] (zero fill)."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    rows = (top.view(n, 1) + torch.arange(h, device=x.device)).view(n, h, 1)
    cols = (left.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, w)
    out = xp.permute(0, 2, 3, 1)[torch.arange(n, device=x.device).view(n, 1, 1), rows, cols]  # N×H×W×C
    return out.permute(0, 3, 1, 2)


def hflip(x, mask):
    """Images where `mask` is true mirrored left to right."""
    import torch

    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)


def rotate(x, degrees):
    """Each image rotated anticlockwise by its angle about its centre; bilinear, zeros outside."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    rad = torch.deg2rad(degrees.to(torch.float64))
    cos, sin = torch.cos(rad), torch.sin(rad)
    # Output pixel -> input pixel in normalised coordinates (align_corners=False, y pointing down).
    theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=x.device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * (h / w)
    theta[:, 1, 0] = sin * (w / h)
    theta[:, 1, 1] = cos
    grid = F.affine_grid(theta.to(x.dtype), [n, 1, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _per_image(f, x):
    return f.to(x.dtype).view(-1, 1, 1, 1)


def _gray(x):
    if x.shape[1] == 3:
        r, g, b = x.unbind(1)
        return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)
    return x


def _blend(x, other, f):
    return (f * x + (1 - f) * other).clamp_(0.0, 1.0)


def adjust_brightness(x, factor):
    return (x * _per_image(factor, x)).clamp_(0.0, 1.0)


def adjust_contrast(x, factor):
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean, _per_image(factor, x))


def adjust_saturation(x, factor):
    if x.shape[1] != 3:
        return x  # grayscale has no saturation
    return _blend(x, _gray(x), _per_image(factor, x))


def adjust_hue(x, shift):
    """Hue turned by `shift` (a fraction of the colour circle, -0.5..0.5) per image; RGB only."""
    import torch

    if x.shape[1] != 3:
        return x
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(dim=1), x.amin(dim=1)
    delta = maxc - minc  # chroma: saturation × value
    d = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(maxc == r, (g - b) / d, torch.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    h = torch.remainder(h / 6.0 + shift.to(x.dtype).view(-1, 1, 1), 1.0) * 6.0
    # HSV -> RGB: channel n is V - C * clamp(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6.
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h + n, 6.0)
        out.append(maxc - delta * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return torch.stack(out, dim=1)


def batch_generator(seed: int, epoch: int, batch: int):
    """The augmentation RNG of one batch: a function of (seed, epoch, batch) only."""
    import torch

    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(epoch) * 100_003 + int(batch) * 7 + 12345) % (2**63 - 1))
    return g


def epoch_permutation(seed: int, epoch: int, n: int):
    """The data order of one epoch: a function of (seed, epoch) only, so a resumed run replays it."""
    import torch

    g = torch.Generator()
    g.manual_seed((int(seed) * 7_919 + int(epoch) * 104_729 + 1) % (2**63 - 1))
    return torch.randperm(n, generator=g)
