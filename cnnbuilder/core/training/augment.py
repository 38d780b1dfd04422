"""Normalisation and augmentation of whole uint8 batches on the training device.

torchvision.transforms.v2 draws one set of random parameters per call, so applied to a batch
tensor it would flip, crop or rotate every image the same way. Here each image gets its own
parameters, drawn from a CPU generator seeded per batch (so a resumed run sees the very same
augmentations), and applied in one vectorised pass: random crop (zero padding), horizontal flip
and rotation as one affine resampling, colour jitter as per-image factors. The deterministic
steps use v2 directly (`v2.functional.normalize`).
"""

from __future__ import annotations

import math

from .config import TrainConfig


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
        std_t = torch.tensor(self.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        mean_t = torch.tensor(self.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._scale = (1.0 / 255.0) / std_t
        self._shift = -mean_t / std_t

    def __call__(self, x, train: bool = False, generator=None, memory_format=None):
        """uint8 N×C×H×W -> normalised float32 (augmented when `train` and augmentation is set)."""
        import torch

        if train and self.cfg.augments:
            xf = x.to(torch.float32).div_(255.0)
            xf = self._augment(xf, generator)
            from torchvision.transforms import v2

            xf = v2.functional.normalize(xf, self.mean, self.std, inplace=True)
        else:
            xf = torch.addcmul(self._shift, x.to(torch.float32), self._scale)
        if memory_format is not None:
            xf = xf.contiguous(memory_format=memory_format)
        return xf

    def _augment(self, x, generator):
        import torch
        import torch.nn.functional as F

        cfg = self.cfg
        n, c, h, w = x.shape
        g = generator
        rand = lambda *shape: torch.rand(*shape, generator=g)  # CPU draws: identical on every device
        dev = x.device

        if cfg.crop_padding or cfg.rotation:
            p = cfg.crop_padding
            # Integer pixel shifts in [-p, p] equal RandomCrop(size, padding=p) with zero fill.
            sx = torch.randint(-p, p + 1, (n,), generator=g).float() if p else torch.zeros(n)
            sy = torch.randint(-p, p + 1, (n,), generator=g).float() if p else torch.zeros(n)
            ang = (rand(n) * 2 - 1) * math.radians(cfg.rotation) if cfg.rotation else torch.zeros(n)
            flip = (rand(n) < 0.5) if cfg.hflip else torch.zeros(n, dtype=torch.bool)
            cos, sin = torch.cos(ang), torch.sin(ang)
            fx = torch.where(flip, -1.0, 1.0)
            theta = torch.zeros(n, 2, 3)
            # Output pixel -> input pixel in normalised coordinates (align_corners=False).
            theta[:, 0, 0] = cos * fx
            theta[:, 0, 1] = -sin * (h / w)
            theta[:, 1, 0] = sin * fx * (w / h)
            theta[:, 1, 1] = cos
            theta[:, 0, 2] = -2 * sx / w
            theta[:, 1, 2] = -2 * sy / h
            grid = F.affine_grid(theta.to(dev), list(x.shape), align_corners=False)
            mode = "bilinear" if cfg.rotation else "nearest"
            x = F.grid_sample(x, grid.to(x.dtype), mode=mode, padding_mode="zeros", align_corners=False)
        elif cfg.hflip:
            flip = (rand(n) < 0.5).to(dev).view(n, 1, 1, 1)
            x = torch.where(flip, x.flip(-1), x)

        if cfg.color_jitter:
            j = cfg.color_jitter
            factor = lambda: (1 - j + 2 * j * rand(n)).to(dev).view(n, 1, 1, 1)
            x = x * factor()  # brightness
            gray = self._gray(x)
            m = gray.mean(dim=(2, 3), keepdim=True)
            x = (x - m) * factor() + m  # contrast
            if c == 3:
                gray = self._gray(x)
                x = (x - gray) * factor() + gray  # saturation
            x = x.clamp_(0.0, 1.0)
        return x

    @staticmethod
    def _gray(x):
        if x.shape[1] == 3:
            return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        return x.mean(dim=1, keepdim=True)


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
