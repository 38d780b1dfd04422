"""The fixed text of an exported training script, one constant per part. `script.py` fills in the
project's settings, the generated model and the data loader of the project's dataset.

Everything here is plain Python that the exported script runs as is; the functions it shares with
the app (shapes generator, split, statistics, augmentation kernels, data order, RNG state) are
copied from the app's modules by `_source.definitions`, so they cannot drift apart.
"""

IMPORTS = '''\
from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import math
import os
import random
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
{extra_imports}from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
'''

ARGS = '''\
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    s = SETTINGS
    p = argparse.ArgumentParser(description="Train the cnnbuilder model " + TITLE + ".")
    p.add_argument("--data-root", metavar="DIR",
                   default=s["data_root"] or os.environ.get("CNNBUILDER_DATASETS") or "data",
                   help="folder that holds the dataset (torchvision layout), or the image folder "
                        "(default: %(default)s)")
    p.add_argument("--download", action="store_true", default=s["download"],
                   help="download the dataset into --data-root if it is missing")
    p.add_argument("--epochs", type=int, default=s["epochs"], help="epochs to train (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=s["batch_size"],
                   help="images per batch IN EACH PROCESS: under torchrun with N processes a step "
                        "trains on N x this many images (default: %(default)s)")
    p.add_argument("--lr", type=float, default=s["lr"], help="learning rate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=s["seed"], help="random seed (default: %(default)s)")
    p.add_argument("--device", default=s["device"],
                   help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps "
                        "(default: %(default)s); under torchrun each process takes GPU LOCAL_RANK")
    p.add_argument("--out", metavar="DIR", default=OUT_DIR,
                   help="where checkpoint.pt, model.pt and metrics.csv go (default: %(default)s)")
    p.add_argument("--resume", metavar="CKPT",
                   help="continue from a checkpoint (this script's or cnnbuilder's), or start from "
                        "weights exported by cnnbuilder (.pt)")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write TensorBoard event files into DIR (needs: pip install tensorboard)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        p.error("--epochs and --batch-size must be at least 1 and --lr above 0")
    return args


@dataclass
class Context:
    """This process's place in the run: rank 0 of 1 without torchrun."""

    rank: int
    local_rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def log(self, *args) -> None:
        if self.main:  # one process speaks for the run
            print(*args, flush=True)


def pick_device(name: str, local_rank: int, world: int) -> torch.device:
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        mps = getattr(torch.backends, "mps", None)
        if world == 1 and mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("CUDA was requested but no CUDA GPU is available: use --device auto or cpu")
        index = int(name[5:]) if name.startswith("cuda:") else local_rank
        if index >= torch.cuda.device_count():
            raise SystemExit(f"GPU {index} was requested but this machine has {torch.cuda.device_count()}")
        return torch.device("cuda", index)
    if name in ("cpu", "mps"):
        return torch.device(name)
    raise SystemExit(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")


def setup_distributed(device_name: str) -> Context:
    """One process, or one of torchrun's (it sets WORLD_SIZE, RANK and LOCAL_RANK): NCCL between
    GPUs, gloo between CPU processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank, world)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        elif device.type == "cpu":
            dist.init_process_group("gloo")
        else:
            raise SystemExit(f"torchrun needs CUDA or the CPU, not {device.type}: use --device cpu")
    return Context(rank, local_rank, world, device)


@contextlib.contextmanager
def local_main_first(ctx: Context):
    """Run the block on each machine's first process before the others (a download happens once)."""
    if ctx.world > 1 and ctx.local_rank != 0:
        dist.barrier()
    yield
    if ctx.world > 1 and ctx.local_rank == 0:
        dist.barrier()
'''

DATA = '''\
@dataclass
class Data:
    """Images in memory as uint8 N×C×H×W with int64 labels, like cnnbuilder holds them."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor] | None
    test: tuple[torch.Tensor, torch.Tensor]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if not size or tuple(x.shape[-2:]) == (size, size):
        return x
    from torchvision.transforms import v2

    return torch.cat([v2.functional.resize(x[i:i + 4096], [size, size], antialias=True)
                      for i in range(0, len(x), 4096)])


def load_data(args: argparse.Namespace, ctx: Context) -> Data:
    """The project's dataset, split, limited and resized as cnnbuilder does it."""
    s = SETTINGS
    with local_main_first(ctx):
        (x, y), (tx, ty), val = read_images(args)
    x, tx = resize(x, s["resize"]), resize(tx, s["resize"])
    if val is None:
        tr_idx, va_idx = split_indices(len(y), s["val_split"], args.seed)
        if len(va_idx):
            val = (x[torch.from_numpy(va_idx)], y[torch.from_numpy(va_idx)])
    else:
        tr_idx = np.arange(len(y))
        val = (resize(val[0], s["resize"]), val[1]) if len(val[1]) else None
    if s["train_limit"]:
        tr_idx = tr_idx[:s["train_limit"]]
    tr = torch.from_numpy(tr_idx)
    train = (x[tr].contiguous(), y[tr].contiguous())
    if len(train[1]) == 0:
        raise SystemExit("there are no training images left after the validation split")
    if tuple(train[0].shape[1:]) != INPUT_SHAPE:
        raise SystemExit(f"the images are {tuple(train[0].shape[1:])} but the model takes {INPUT_SHAPE}")
    if s["normalize"]:
        mean, std = channel_stats(train[0])
    else:
        mean, std = (0.0,) * INPUT_SHAPE[0], (1.0,) * INPUT_SHAPE[0]
    return Data(train, val, (tx.contiguous(), ty.contiguous()), mean, std)
'''

READ_SHAPES = '''\
def read_images(args: argparse.Namespace):
    """cnnbuilder's built-in shapes: generated, the same images for the same seed everywhere."""
    s = SETTINGS
    x, y = make_shapes(s["shapes_train"], args.seed, s["shapes_size"], s["shapes_channels"], split=0)
    tx, ty = make_shapes(s["shapes_test"], args.seed, s["shapes_size"], s["shapes_channels"], split=1)
    return (torch.from_numpy(x), torch.from_numpy(y)), (torch.from_numpy(tx), torch.from_numpy(ty)), None
'''

READ_TORCHVISION = '''\
def read_images(args: argparse.Namespace):
    """{label} from torchvision, as uint8 tensors (no validation set of its own: it is split off)."""
    parts = []
    for train in (True, False):
        try:
            ds = torchvision.datasets.{cls}(args.data_root, {split_arg}, download=args.download)
        except (RuntimeError, OSError) as exc:
            raise SystemExit(f"{label} was not found in {{args.data_root}} ({{str(exc).splitlines()[0]}}): "
                             f"pass --data-root DIR (torchvision layout) or --download") from None
{convert}
        parts.append((x.contiguous(), y.to(torch.int64)))
    return parts[0], parts[1], None
'''

CONVERT = {
    "mnist": "        x, y = ds.data.unsqueeze(1), ds.targets",
    "svhn": "        x, y = torch.from_numpy(ds.data), torch.from_numpy(ds.labels.astype(np.int64))",
    "cifar": ("        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2)  # N×H×W×C -> N×C×H×W\n"
              "        y = torch.as_tensor(ds.targets)"),
}

READ_FOLDER = '''\
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def class_folders(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def list_images(path: Path, classes: list[str]) -> list[tuple[str, int]]:
    items = []
    for k, name in enumerate(classes):
        for dirpath, dirnames, files in os.walk(path / name, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            items += [(os.path.join(dirpath, f), k) for f in sorted(files)
                      if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")]
    return items


def decode(items: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 C×H×W at the model's input size; unreadable files are skipped with a note."""
    from PIL import Image
    from torchvision.transforms import v2

    channels, size = INPUT_SHAPE[0], list(INPUT_SHAPE[1:])
    xs, ys = [], []
    for path, label in items:
        try:
            with Image.open(path) as im:
                t = v2.functional.pil_to_tensor(im.convert("L" if channels == 1 else "RGB"))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # a damaged file
            print(f"skipped {path}: {type(exc).__name__}: {exc}")
            continue
        xs.append(t if list(t.shape[-2:]) == size else v2.functional.resize(t, size, antialias=True))
        ys.append(label)
    if not xs:
        return torch.empty((0, *INPUT_SHAPE), dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


def read_images(args: argparse.Namespace):
    """An image folder: DIR/<class>/<images>, or DIR/train/<class>/... with DIR/val/ and DIR/test/."""
    base = Path(args.data_root).expanduser()
    if not base.is_dir():
        raise SystemExit(f"the image folder {base} does not exist: pass --data-root DIR")
    splits = {p.name.lower(): p for p in class_folders(base)}
    train_dir = splits.get("train", base)
    classes = [p.name for p in class_folders(train_dir)]
    if len(classes) != len(CLASSES):
        raise SystemExit(f"{train_dir} has {len(classes)} class folders but the model has {len(CLASSES)} outputs")
    items = list_images(train_dir, classes)
    val_dir = next((splits[k] for k in ("val", "valid", "validation") if k in splits and "train" in splits), None)
    if val_dir is not None:
        train, val = decode(items), decode(list_images(val_dir, classes))
    else:  # hold out a share of the files for validation, as cnnbuilder does
        tr_idx, va_idx = split_indices(len(items), SETTINGS["val_split"], args.seed)
        train, val = decode([items[i] for i in tr_idx]), decode([items[i] for i in va_idx])
    if "test" in splits and "train" in splits:
        test = decode(list_images(splits["test"], classes))
    else:  # no test folder: like cnnbuilder, test on the validation images (or the training ones)
        test = val if len(val[1]) else train
    return train, test, val
'''

AUGMENT = '''\
def draw_augmentation(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """The random parameters of n images, drawn on the CPU in cnnbuilder's order."""
    s = SETTINGS

    def rand() -> torch.Tensor:
        return torch.rand(n, generator=g)

    d = {}
    if s["crop_padding"]:
        p = s["crop_padding"]
        d["top"] = torch.randint(0, 2 * p + 1, (n,), generator=g)
        d["left"] = torch.randint(0, 2 * p + 1, (n,), generator=g)
    if s["hflip"]:
        d["flip"] = rand() < 0.5
    if s["rotation"]:
        d["angle"] = (rand() * 2 - 1) * s["rotation"]
    if s["color_jitter"]:
        j = s["color_jitter"]
        for name in ("brightness", "contrast", "saturation"):
            d[name] = 1 - j + 2 * j * rand()
    if s["hue"]:
        d["hue"] = (rand() * 2 - 1) * s["hue"]
    return d


def augment(x: torch.Tensor, g: torch.Generator, rank: int = 0, world: int = 1) -> torch.Tensor:
    """uint8 N×C×H×W -> float32 in [0, 1], every image with its own random parameters.

    The parameters are drawn for the whole batch of all processes and each process takes its own
    images' share (DistributedSampler deals them out in turn), so N processes augment exactly as
    one process with the whole batch does."""
    d = {k: v[rank::world].to(x.device) for k, v in draw_augmentation(len(x) * world, g).items()}
    return apply_augmentation(x, d, SETTINGS["crop_padding"])


AUGMENTS = any(SETTINGS[k] for k in ("crop_padding", "hflip", "rotation", "color_jitter", "hue"))


class Preprocess:
    """uint8 batches -> normalised float32; training batches augmented first when the project asks."""

    def __init__(self, mean, std, device: torch.device):
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        # x / 255, then (x - mean) / std, as one multiply-add
        self.scale, self.shift = (1.0 / 255.0) / self.std, -self.mean / self.std

    def __call__(self, x, generator=None, rank=0, world=1, memory_format=None):
        if generator is not None:
            x = augment(x, generator, rank, world).sub_(self.mean).div_(self.std)
        else:
            x = torch.addcmul(self.shift, x.to(torch.float32), self.scale)
        return x.contiguous(memory_format=memory_format) if memory_format is not None else x
'''

BUILD_MODEL = '''\
def build_model(seed: int) -> nn.Module:
    """The model, initialised exactly as cnnbuilder initialises it for the same seed."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    return {cls}()
'''

TRAIN = '''\
def make_optimizer(model: nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    s = SETTINGS
    params = [q for q in model.parameters() if q.requires_grad]
    wd, name = s["weight_decay"], s["optimizer"]
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=s["momentum"], weight_decay=wd)

    def make(**kw) -> torch.optim.Optimizer:
        if name == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=s["momentum"], nesterov=s["nesterov"] and s["momentum"] > 0,
                                   weight_decay=wd, **kw)
        return {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name](params, lr=lr, weight_decay=wd, **kw)

    if device.type in ("cpu", "cuda"):
        with contextlib.suppress(RuntimeError, TypeError, ValueError):
            return make(fused=True)  # one kernel for all parameters
    return make()


def make_scheduler(optimizer, lr: float, steps_per_epoch: int, epochs: int):
    """(scheduler or None, stepped after every batch?)."""
    s, total = SETTINGS, max(1, steps_per_epoch * epochs)
    if s["scheduler"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s["step_size"], gamma=s["gamma"]), False
    if s["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), True
    if s["scheduler"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(2, total)), True
    return None, False


def make_loss():
    if SETTINGS["loss"] == "mse":  # against one-hot targets
        return lambda out, y: F.mse_loss(out, F.one_hot(y, len(CLASSES)).float())
    return {"cross_entropy": nn.CrossEntropyLoss, "nll": nn.NLLLoss}[SETTINGS["loss"]]()


@dataclass
class Run:
    args: argparse.Namespace
    ctx: Context
    data: Data
    net: nn.Module  # the model itself; `model` is the same one wrapped for DDP when distributed
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    per_step: bool
    scaler: object
    loss_fn: object
    preprocess: Preprocess
    batch_size: int  # per process
    steps_per_epoch: int
    memory_format: object
    epoch: int = 0  # epochs done
    step: int = 0  # optimiser steps done
    start_batch: int = 0  # where the current epoch continues (a checkpoint saved mid-epoch)
    accum: dict = field(default_factory=dict)
    history: dict = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    logger: Logger | None = None  # rank 0's metrics.csv and TensorBoard writer


HISTORY_KEYS = ("epoch", "epoch_step", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_lr", "step",
                "loss", "lr_step", "lr")


def make_run(args: argparse.Namespace, ctx: Context, data: Data, net: nn.Module) -> Run:
    device = ctx.device
    use_cl = CHANNELS_LAST and device.type != "mps"
    memory_format = torch.channels_last if use_cl else None
    net = net.to(device, memory_format=memory_format) if use_cl else net.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels once
        data = Data(*(None if s is None else (s[0].to(device), s[1].to(device))
                      for s in (data.train, data.val, data.test)), data.mean, data.std)
    # DistributedSampler(drop_last=True) gives every process the same number of images.
    per_process = len(data.train[1]) // ctx.world
    bs = min(args.batch_size, per_process)
    spe = batches_per_epoch(per_process, bs)
    saved = read_checkpoint(args.resume) if args.resume else None
    planned = (saved or {}).get("config", {}).get("epochs", args.epochs)
    if saved and SETTINGS["scheduler"] in ("cosine", "onecycle") and planned != args.epochs:
        ctx.log(f"the {SETTINGS['scheduler']} schedule was planned for {planned} epochs: continuing with {planned}")
        args.epochs = planned
    optimizer = make_optimizer(net, args.lr, device)
    scheduler, per_step = make_scheduler(optimizer, args.lr, spe, args.epochs)
    amp = SETTINGS["amp"] and device.type == "cuda"  # mixed precision on CUDA only, as in cnnbuilder
    scaler = torch.amp.GradScaler("cuda") if amp else None
    model = net
    if ctx.world > 1:
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    run = Run(args, ctx, data, net, model, optimizer, scheduler, per_step, scaler, make_loss(),
              Preprocess(data.mean, data.std, device), bs, spe, memory_format)
    if saved is not None:
        restore(run, saved, args.resume)
    return run


def autocast(run: Run):
    if run.scaler is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.float16)


def all_sum(ctx: Context, *values) -> list[float]:
    """Sums over every process (float64, so counts stay exact)."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=ctx.device)
    if ctx.world > 1:
        dist.all_reduce(t)
    return t.tolist()


@torch.no_grad()
def evaluate(run: Run, split) -> tuple[float, float]:
    """Loss and accuracy over a split; each process takes every world-th image, then they add up."""
    x, y = split
    x, y = x[run.ctx.rank::run.ctx.world], y[run.ctx.rank::run.ctx.world]
    ebs = max(run.batch_size, min(4 * run.batch_size, 1024))
    total = torch.zeros((), dtype=torch.float64, device=run.ctx.device)
    correct = torch.zeros((), dtype=torch.int64, device=run.ctx.device)
    run.net.eval()
    for i in range(0, len(y), ebs):
        xb, yb = run.preprocess(x[i:i + ebs], memory_format=run.memory_format), y[i:i + ebs]
        with autocast(run):
            out = run.net(xb)
        out = out.float()
        total += run.loss_fn(out, yb).double() * len(yb)
        correct += (out.argmax(1) == yb).sum()
    run.net.train()
    loss_sum, hits, n = all_sum(run.ctx, total, correct, len(y))
    return loss_sum / max(1, n), hits / max(1, n)


def train_epoch(run: Run) -> tuple[float, float]:
    args, ctx, s = run.args, run.ctx, SETTINGS
    x, y = run.data.train
    bs, spe = run.batch_size, run.steps_per_epoch
    # cnnbuilder's data order for this epoch; DistributedSampler deals it out to the processes in
    # turn, so the images of step b over all processes are the ones one process takes at step b.
    order = epoch_permutation(args.seed, run.epoch, len(y))[:spe * bs * ctx.world]
    sampler = DistributedSampler(order, num_replicas=ctx.world, rank=ctx.rank, shuffle=False, drop_last=True)
    mine = order[list(sampler)].to(x.device)
    loss_sum = torch.tensor(run.accum.get("loss_sum", 0.0), dtype=torch.float32, device=ctx.device)
    correct = torch.tensor(run.accum.get("correct", 0), dtype=torch.int64, device=ctx.device)
    seen = run.accum.get("seen", 0)
    losses = []
    run.model.train()
    for b in range(run.start_batch, spe):
        idx = mine[b * bs:(b + 1) * bs]
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        g = batch_generator(args.seed, run.epoch, b) if AUGMENTS else None
        xb = run.preprocess(xb, g, ctx.rank, ctx.world, run.memory_format)
        with autocast(run):
            out = run.model(xb)
        loss = run.loss_fn(out.float(), yb)  # float32 loss even under autocast
        run.optimizer.zero_grad(set_to_none=True)
        if run.scaler is not None:
            run.scaler.scale(loss).backward()
            if s["grad_clip"]:
                run.scaler.unscale_(run.optimizer)
                nn.utils.clip_grad_norm_(run.model.parameters(), s["grad_clip"])
            run.scaler.step(run.optimizer)
            run.scaler.update()
        else:
            loss.backward()
            if s["grad_clip"]:
                nn.utils.clip_grad_norm_(run.model.parameters(), s["grad_clip"])
            run.optimizer.step()
        if run.per_step:
            run.scheduler.step()
        with torch.no_grad():
            loss_sum += loss.detach() * len(yb)
            correct += (out.argmax(1) == yb).sum()
        seen += len(yb)
        losses.append(loss.detach())
        run.step += 1
    run.start_batch, run.accum = 0, {}
    if losses:  # this process's loss of every step, like cnnbuilder's loss curve
        first = run.step - len(losses) + 1
        run.history["step"] += list(range(first, run.step + 1))
        run.history["loss"] += torch.stack(losses).float().cpu().tolist()
    total, hits, n = all_sum(ctx, loss_sum, correct, seen)
    return total / max(1, n), hits / max(1, n)


def train(run: Run) -> dict:
    """Train the remaining epochs; after each one, rank 0 prints, logs and writes a checkpoint."""
    args, ctx, h = run.args, run.ctx, run.history
    out = Path(args.out)
    if ctx.main and run.logger is None:
        run.logger = Logger(run)
    ctx.log(f"training {TITLE} on {DATASET}: {len(run.data.train[1]):,} training images, "
            f"{ctx.world} process(es) on {ctx.device.type}, batch {run.batch_size} per process"
            + (" (mixed precision)" if run.scaler is not None else "")
            + (f", resuming after epoch {run.epoch}" if run.epoch else ""))
    while run.epoch < args.epochs:
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(run)
        val_loss = val_acc = math.nan
        if run.data.val is not None:
            val_loss, val_acc = evaluate(run, run.data.val)
        lr = run.optimizer.param_groups[0]["lr"]
        if run.scheduler is not None and not run.per_step:
            run.scheduler.step()
        run.epoch += 1
        for key, value in zip(("epoch", "epoch_step", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_lr"),
                              (run.epoch, run.step, train_loss, train_acc, val_loss, val_acc, lr), strict=True):
            h[key].append(value)
        h["lr_step"].append(run.step)
        h["lr"].append(lr)
        if not math.isfinite(train_loss):
            raise SystemExit(f"the loss became infinite or NaN in epoch {run.epoch}: training diverged; "
                             f"lower the learning rate (--lr {args.lr / 10:g}) or clip the gradients")
        seconds = time.perf_counter() - start
        val = "" if math.isnan(val_loss) else f"  val loss {val_loss:.4f} acc {val_acc:.2%}"
        ctx.log(f"epoch {run.epoch}/{args.epochs}: train loss {train_loss:.4f} acc {train_acc:.2%}{val}  "
                f"lr {lr:.3g}  ({seconds:.1f} s)")
        if ctx.main:
            run.logger.epoch(run.epoch, run.step, train_loss, train_acc, val_loss, val_acc, lr, seconds)
            save_checkpoint(run, out / "checkpoint.pt")
    return h


def test(run: Run) -> tuple[float, float]:
    """Loss and accuracy on the test images; rank 0 writes the final checkpoint and the weights."""
    loss, acc = evaluate(run, run.data.test)
    ctx, out = run.ctx, Path(run.args.out)
    ctx.log(f"test accuracy {acc:.2%} (loss {loss:.4f}) after {run.epoch} epoch(s), {run.step:,} steps")
    if ctx.main:
        with open(out / "test.csv", "w", newline="") as f:
            csv.writer(f).writerows([("test_loss", "test_acc"), (loss, acc)])
        if run.logger is None:
            run.logger = Logger(run)
        run.logger.test(run.epoch, loss, acc)
        run.logger.close()
        run.logger = None
        save_checkpoint(run, out / "checkpoint.pt", finished=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in run.net.state_dict().items()}
        save_atomic(weights, out / "model.pt")
        ctx.log(f"wrote {out / 'checkpoint.pt'}, {out / 'model.pt'} and {out / 'metrics.csv'}")
    return loss, acc


def tensorboard_writer(directory: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise SystemExit("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(log_dir=directory)


class Logger:
    """metrics.csv (always) and TensorBoard scalars (with --tensorboard), one row per epoch."""

    COLUMNS = ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")

    def __init__(self, run: Run):
        self.path = Path(run.args.out) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        h = run.history  # a resumed run keeps its earlier epochs
        rows = zip(h["epoch"], h["epoch_step"], h["train_loss"], h["train_acc"], h["val_loss"], h["val_acc"],
                   h["epoch_lr"], strict=True)
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerows([self.COLUMNS, *(self._cells((*row, math.nan)) for row in rows)])
        self.tb = tensorboard_writer(run.args.tensorboard) if run.args.tensorboard else None

    @staticmethod
    def _cells(values) -> list:
        return ["" if isinstance(v, float) and math.isnan(v) else v for v in values]

    def epoch(self, epoch, step, train_loss, train_acc, val_loss, val_acc, lr, seconds) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow(self._cells((epoch, step, train_loss, train_acc, val_loss, val_acc, lr, seconds)))
        if self.tb is not None:
            for tag, value in (("train/loss", train_loss), ("train/accuracy", train_acc), ("val/loss", val_loss),
                               ("val/accuracy", val_acc), ("lr", lr)):
                if not math.isnan(value):
                    self.tb.add_scalar(tag, value, epoch)
            self.tb.flush()

    def test(self, epoch, loss, acc) -> None:
        if self.tb is not None:
            self.tb.add_scalar("test/loss", loss, epoch)
            self.tb.add_scalar("test/accuracy", acc, epoch)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
'''

CHECKPOINT = '''\
# cnnbuilder's checkpoint layout: "Resume from checkpoint…" in the app continues a run of this
# script, and --resume continues one of the app's.
CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "cnnbuilder-checkpoint", 2  # 2: with a SHA-256 of the content


def save_atomic(obj, path: Path) -> None:
    """torch.save into a temporary file, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(run: Run, path: Path, finished: bool = False) -> None:
    """Everything needed to continue the run: plain tensors, numbers and strings, so that
    torch.load(weights_only=True) reads it without running code."""
    config = dict(SETTINGS, epochs=run.args.epochs, lr=run.args.lr, seed=run.args.seed, device=run.args.device,
                  data_root=run.args.data_root, download=run.args.download,
                  batch_size=run.batch_size * run.ctx.world)  # the batch of one step over all processes
    data = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": config,
        "graph": GRAPH,
        "model": {k: v.detach().to("cpu").contiguous().clone() for k, v in run.net.state_dict().items()},
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
        "epoch": run.epoch,
        "batch": 0,
        "step": run.step,
        "accum": {"loss_sum": 0.0, "correct": 0, "seen": 0},
        "history": {k: list(v) for k, v in run.history.items()},
        "rng": rng_state(),
        "finished": finished,
    }
    save_atomic({**data, CHECKSUM: digest(data)}, path)


def read_checkpoint(path: str) -> dict:
    """A cnnbuilder checkpoint, or bare weights (a state_dict, as cnnbuilder's Export weights writes)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such checkpoint file") from None
    except Exception as exc:  # noqa: BLE001 - torch.load raises all kinds of errors for damaged files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SystemExit(f"{path}: not a checkpoint or weights file, or damaged ({first})") from None
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT:
        if data.get("version", 0) > CHECKPOINT_VERSION:
            raise SystemExit(f"{path}: written by a newer cnnbuilder (checkpoint version {data['version']})")
        if (CHECKSUM in data or data.get("version", 0) >= 2) and data.get(CHECKSUM) != digest(data):
            raise SystemExit(f"{path}: the checkpoint is damaged: its checksum does not match its contents")
        return data
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"model": data}
    raise SystemExit(f"{path}: neither a cnnbuilder checkpoint nor a state_dict of weights")


def restore(run: Run, saved: dict, path: str) -> None:
    try:
        run.net.load_state_dict(saved["model"])
    except (RuntimeError, TypeError) as exc:
        lines = str(exc).strip().splitlines()
        raise SystemExit(f"{path}: saved from a different model: {(lines[1] if len(lines) > 1 else lines[0]).strip()}"
                         ) from None
    if "optimizer" not in saved:
        run.ctx.log(f"loaded the weights from {path}; training starts at epoch 1")
        return
    old = saved.get("config") or {}
    if old.get("optimizer", SETTINGS["optimizer"]) != SETTINGS["optimizer"]:
        raise SystemExit(f"{path} was trained with {old['optimizer']}, this script uses {SETTINGS['optimizer']}: "
                         "export the script from a project with the same optimizer")
    run.optimizer.load_state_dict(saved["optimizer"])
    if run.scheduler is not None and saved.get("scheduler") is not None:
        run.scheduler.load_state_dict(saved["scheduler"])
    if run.scaler is not None and saved.get("scaler") is not None:
        run.scaler.load_state_dict(saved["scaler"])
    run.epoch, run.step = int(saved["epoch"]), int(saved["step"])
    batch = int(saved.get("batch", 0))
    if batch and old.get("batch_size") != run.batch_size * run.ctx.world:
        run.ctx.log(f"the checkpoint stopped inside epoch {run.epoch + 1} with another batch size: "
                    "that epoch starts again")
    elif batch:
        run.start_batch, run.accum = batch, dict(saved.get("accum") or {})
    for key, values in (saved.get("history") or {}).items():
        if key in run.history:
            run.history[key] = [float(v) for v in values]
    set_rng_state(saved["rng"])
'''

# Fine-tuning (only in the script of a project whose training starts from a weights file): the
# option, where make_run applies it, and the loader (copy_blocks and Applied come from node_weights).
INIT_ARG = '''\
    p.add_argument("--init-weights", metavar="PATH", default=INIT_WEIGHTS,
                   help="start from this cnnbuilder weights file (fine-tuning; not when resuming); '' "
                        "trains from random values (default: %(default)s)")
'''
INIT_ARG_BEFORE = '    p.add_argument("--tensorboard",'

INIT_APPLY = '''\
    if saved is None and args.init_weights:
        ctx.log(start_from(net, args.init_weights))
'''
INIT_APPLY_BEFORE = "    optimizer = make_optimizer(net, args.lr, device)\n"

START_FROM = '''\
def start_from(net: nn.Module, path: str) -> str:
    \"\"\"Fine-tuning: the weights file's tensors copied into the fresh model block by block, as
    cnnbuilder does; a tensor whose shape no longer fits (another number of classes) keeps its
    random values. weights_only: a weights file never runs code.\"\"\"
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such weights file (--init-weights '' trains from random values)") from None
    except Exception as exc:  # noqa: BLE001 - torch.load raises all kinds of errors for damaged files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SystemExit(f"{path}: not a weights file that can be read safely ({first})") from None
    blocks = data.get("blocks") if isinstance(data, dict) and data.get("format") == FORMAT else None
    if not isinstance(blocks, dict) or not all(
            isinstance(sd, dict) and all(isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in sd.items())
            for sd in blocks.values()):
        raise SystemExit(f"{path}: not a cnnbuilder weights file")
    done = copy_blocks(net, BLOCK_MODULES, blocks)
    if done.total and not done.loaded:
        raise SystemExit(f"{path}: none of its weights fit this model ({done.summary()})")
    return f"started from {Path(path).name}: {done.summary()}"
'''

MAIN = '''\
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ctx = setup_distributed(args.device)
    try:
        data = load_data(args, ctx)
        run = make_run(args, ctx, data, build_model(args.seed))
        train(run)
        test(run)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''

NOTEBOOK_PIP = """\
# Colab and most Jupyter images have these already: this installs them only where one is missing.
!python -c "import torch, torchvision, matplotlib" 2>/dev/null || pip install --quiet torch torchvision matplotlib
"""

NOTEBOOK_RUN = {
    "setup": """\
# Change the settings here, e.g. parse_args(["--epochs", "5", "--device", "cpu"]).
args = parse_args([])
ctx = setup_distributed(args.device)
print(f"training on {ctx.device}")""",
    "data": """\
data = load_data(args, ctx)
print(f"{len(data.train[1]):,} training, {0 if data.val is None else len(data.val[1]):,} validation and "
      f"{len(data.test[1]):,} test images; mean {data.mean}, std {data.std}")""",
    "model": """\
model = build_model(args.seed)
print(model)""",
    "train": """\
run = make_run(args, ctx, data, model)
history = train(run)""",
}

NOTEBOOK_EVALUATE = """\
test_loss, test_acc = test(run)"""

NOTEBOOK_PLOT = """\
import matplotlib.pyplot as plt

h = run.history
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
ax_loss.plot(h["step"], h["loss"], alpha=0.3, label="each batch")
ax_loss.plot(h["epoch_step"], h["train_loss"], "o-", label="training")
ax_loss.plot(h["epoch_step"], h["val_loss"], "o--", label="validation")
ax_loss.set(xlabel="step", ylabel="loss", title="Loss")
ax_loss.legend()
ax_acc.plot(h["epoch"], h["train_acc"], "o-", label="training")
ax_acc.plot(h["epoch"], h["val_acc"], "o--", label="validation")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
ax_acc.legend()
plt.show()"""
