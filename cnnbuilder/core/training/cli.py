"""`cnnbuilder train`: the training engine on the command line.

Settings start from the project's saved training settings; options given here override them.
Exit codes: 0 trained, 1 invalid project or settings (or a model that does not fit the data),
2 unreadable project, missing data, a missing or damaged checkpoint or initial weights file, or a
checkpoint or weights that cannot be written, 3 training failed (diverged, out of memory,
error), 130 stopped with Ctrl-C (a checkpoint is still written when --checkpoint is given).

Under torchrun (`torchrun --nproc_per_node=N -m cnnbuilder train ...`) every process runs this
command: they join one process group, train on their shares of each batch (--batch-size is per
process), and rank 0 alone prints, writes the run log, the checkpoint and the weights. Every
process reports its own failure, prefixed with its rank.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from dataclasses import fields

from .config import DATASETS, LOSSES, OPTIMIZERS, SCHEDULERS, ConfigError, TrainConfig

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE, EXIT_FAILED, EXIT_STOPPED = 0, 1, 2, 3, 130
_FAIL_EXIT = {"config": EXIT_INVALID, "model": EXIT_INVALID, "device": EXIT_INVALID, "data": EXIT_UNREADABLE,
              "checkpoint": EXIT_UNREADABLE, "weights": EXIT_UNREADABLE}


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the model on a dataset",
                       description="Train the project's model. Settings default to those saved in the project "
                                   "(Training panel); options override them.")
    p.add_argument("file", help="the project (.json)")
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=tuple(DATASETS), help="default: the project's, else shapes (built in)")
    d.add_argument("--data-root", metavar="DIR",
                   help="folder holding the dataset (torchvision layout), or the image folder for 'folder'")
    d.add_argument("--download", action="store_true", default=None, help="download the dataset if missing")
    d.add_argument("--val-split", type=float, metavar="F", help="fraction held out for validation (0-0.9)")
    d.add_argument("--train-limit", type=int, metavar="N", help="use at most N training images")
    d.add_argument("--resize", type=int, metavar="PX", help="resize images to PX×PX")
    d.add_argument("--no-normalize", dest="normalize", action="store_false", default=None,
                   help="do not normalise with the dataset's mean and std")
    a = p.add_argument_group("augmentation")
    a.add_argument("--crop-padding", type=int, metavar="PX", help="random crop after padding by PX pixels")
    a.add_argument("--hflip", action="store_true", default=None, help="random horizontal flips")
    a.add_argument("--rotation", type=float, metavar="DEG", help="random rotation up to ±DEG degrees")
    a.add_argument("--color-jitter", type=float, metavar="F", help="brightness/contrast/saturation ±F")
    a.add_argument("--hue", type=float, metavar="F", help="hue shift ±F of the colour circle (0-0.5, colour only)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, metavar="N")
    o.add_argument("--batch-size", type=int, metavar="N", help="images per step (per process under torchrun)")
    o.add_argument("--lr", type=float, metavar="LR", help="learning rate")
    o.add_argument("--optimizer", choices=tuple(OPTIMIZERS))
    o.add_argument("--momentum", type=float, metavar="M", help="SGD/RMSprop momentum")
    o.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum (SGD)")
    o.add_argument("--weight-decay", type=float, metavar="WD")
    o.add_argument("--scheduler", choices=tuple(SCHEDULERS))
    o.add_argument("--loss", choices=tuple(LOSSES))
    o.add_argument("--grad-clip", type=float, metavar="NORM", help="clip the gradient norm (0: off)")
    o.add_argument("--seed", type=int)
    h = p.add_argument_group("hardware")
    h.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    h.add_argument("--no-amp", dest="amp", action="store_false", default=None,
                   help="no mixed precision on CUDA")
    h.add_argument("--num-workers", type=int, metavar="N", help="loader processes for data read from disk")
    r = p.add_argument_group("files")
    r.add_argument("--init-weights", metavar="PATH",
                   help="fine-tune: start from this per-block weights file (as cnnbuilder import writes it); "
                        "default: the project's setting; '' for random initialisation")
    r.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint")
    r.add_argument("--checkpoint", metavar="PATH", help="write a checkpoint here when the run ends")
    r.add_argument("--export-weights", metavar="DIR",
                   help="write the model code (.py) and trained weights (.pt, .safetensors) into DIR")
    r.add_argument("--log-dir", metavar="DIR",
                   help="write the run log (metrics.csv, TensorBoard files) into DIR/<run name> "
                        "(default: runs/ next to the project)")
    r.add_argument("--tensorboard", metavar="DIR", dest="tensorboard_dir",
                   help="also write TensorBoard event files, into DIR/<run name> (needs the tensorboard "
                        "package); DIR '-' keeps the log folder")
    r.add_argument("--run-name", metavar="NAME", help="name of the run's log folder (default: project-date-time)")
    r.add_argument("--quiet", action="store_true", help="print only the final result")
    p.set_defaults(func=cmd_train)


_RANK = ""  # "[rank R/N] " under torchrun, so that each process's messages say whose they are


def _err(msg: str) -> None:
    print(f"cnnbuilder train: {_RANK}{msg}", file=sys.stderr)


def build_config(args, project_training: dict) -> TrainConfig:
    cfg = TrainConfig.from_dict(project_training)
    for note in cfg.notes:
        _err(f"warning: project file: {note}")
    # Every option is named after its TrainConfig field; None means "not given".
    changes = {f.name: v for f in fields(TrainConfig) if (v := getattr(args, f.name, None)) is not None}
    if changes.get("init_weights"):  # typed on the command line: relative to where the command runs
        changes["init_weights"] = os.path.abspath(changes["init_weights"])
    tb = getattr(args, "tensorboard_dir", None)
    if tb is not None:
        changes["tensorboard"] = True
        if tb != "-":
            changes["log_dir"] = tb
    return cfg.replace(**changes)


def cmd_train(args) -> int:
    """Run alone, or as one process of a torchrun job (joining and leaving its process group)."""
    global _RANK
    from . import distributed

    try:
        env = distributed.torchrun_env()
    except distributed.DistributedError as exc:
        _err(str(exc))
        return EXIT_INVALID
    if env is None:
        return _train(args)
    _RANK = f"[rank {env.rank}/{env.world_size}] "
    try:
        try:
            device = distributed.setup(env, args.device or "auto")
        except distributed.DistributedError as exc:
            _err(str(exc))
            return EXIT_INVALID
        return _train(args, device=device, rank=env.rank)
    finally:
        distributed.teardown()
        _RANK = ""


def _train(args, device: str | None = None, rank: int = 0) -> int:
    from ..project import ProjectError, load_project
    from .runlog import default_log_dir, run_name

    try:
        project = load_project(args.file)
    except ProjectError as exc:
        _err(str(exc))
        return EXIT_UNREADABLE
    try:
        cfg = build_config(args, project.training)
        if device is not None:
            cfg = cfg.replace(device=device)
    except ConfigError as exc:
        _err(f"bad setting {exc}")
        return EXIT_INVALID
    quiet = args.quiet or rank != 0
    if args.resume and not os.path.isfile(args.resume):
        _err(f"{args.resume}: no such checkpoint file")
        return EXIT_UNREADABLE

    from .checkpoint import CheckpointError, SaveError
    from .devices import device_notes
    from .engine import TrainControl, Trainer
    from .events import (
        BatchMetrics,
        Cancelled,
        CheckpointFailed,
        CheckpointSaved,
        EpochMetrics,
        Failed,
        Finished,
        Notice,
        Started,
        Status,
        first_line,
    )

    if cfg.device != "cpu":  # a GPU the machine has but this torch cannot use: say why, and what to do
        for note in device_notes():
            _err(f"note: {note}")
    control = TrainControl()
    log_dir = cfg.log_dir or default_log_dir(args.file)
    trainer = Trainer(project.graph, cfg, control=control, resume=args.resume, log_dir=log_dir,
                      run_name=args.run_name or run_name(project.path.stem if project.path else project.name),
                      project_file=args.file)
    bar = _Bar(quiet=quiet)
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        if control.stopped:  # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        bar.clear()
        print("stopping after this batch… (Ctrl-C again to abort)", file=sys.stderr)
        control.stop()

    # Under torchrun a graceful stop would leave the other processes waiting in a collective:
    # Ctrl-C (which torchrun passes to every process) ends them all at once instead.
    in_main = _is_main_thread() and device is None
    if in_main:
        signal.signal(signal.SIGINT, on_sigint)
    outcome = None
    try:
        for ev in trainer.run():
            if isinstance(ev, BatchMetrics):
                bar.update(ev)
            elif isinstance(ev, Started):
                if not quiet:
                    where = f"{ev.device_name}" + (" (mixed precision)" if ev.amp else "")
                    if ev.processes > 1:
                        where += f", {ev.processes} processes × batch {cfg.batch_size}"
                    resumed = f", resuming at epoch {ev.start_epoch} step {ev.start_step}" if ev.start_step else ""
                    print(f"training {project.name} on {ev.dataset}: {ev.num_train:,} training, {ev.num_val:,} "
                          f"validation, {ev.num_test:,} test images; {where}{resumed}")
                    if ev.run_dir:
                        print(f"run log: {ev.run_dir}" + (" (TensorBoard: tensorboard --logdir "
                                                           f"{os.path.dirname(ev.run_dir)})" if cfg.tensorboard
                                                          else ""))
                bar.epochs = ev.epochs
            elif isinstance(ev, EpochMetrics):
                bar.clear()
                if not quiet:
                    val = "" if ev.val_loss is None else f"  val loss {ev.val_loss:.4f} acc {ev.val_acc:.2%}"
                    print(f"epoch {ev.epoch}/{bar.epochs}: train loss {ev.train_loss:.4f} acc {ev.train_acc:.2%}"
                          f"{val}  lr {ev.lr:.3g}  ({ev.seconds:.1f} s)")
            elif isinstance(ev, (Notice,)):
                bar.clear()
                if rank == 0:
                    print(f"note: {ev.message}", file=sys.stderr)
            elif isinstance(ev, Status):
                if not quiet:
                    bar.clear()
                    print(ev.message)
            elif isinstance(ev, CheckpointSaved):
                bar.clear()
                print(f"wrote checkpoint {ev.path}")
            elif isinstance(ev, CheckpointFailed):
                bar.clear()
                _err(ev.message)
            elif isinstance(ev, (Finished, Failed, Cancelled)):
                bar.clear()
                outcome = ev
    except KeyboardInterrupt:
        bar.clear()
        _err("aborted")
        return EXIT_STOPPED
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)

    if isinstance(outcome, Failed):
        _err(outcome.message)
        return _FAIL_EXIT.get(outcome.kind, EXIT_FAILED)
    code = EXIT_OK
    if isinstance(outcome, Finished):
        if rank == 0:
            _print_result(outcome)
    else:
        if rank == 0:
            print(f"stopped at epoch {outcome.epoch}, step {outcome.step}")
        code = EXIT_STOPPED
    if rank != 0:
        return code
    if args.checkpoint:
        try:
            path = trainer.save_checkpoint(args.checkpoint)
            print(f"wrote checkpoint {path}")
        except (SaveError, CheckpointError) as exc:  # one line that names the file
            _err(str(exc))
            code = code or EXIT_UNREADABLE
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            _err(f"cannot write the checkpoint {args.checkpoint}: {type(exc).__name__}: {first_line(exc)[:200]}")
            code = code or EXIT_UNREADABLE
    if args.export_weights and isinstance(outcome, Finished):
        try:
            paths = trainer.export_weights(args.export_weights, title=project.name)
            print("wrote " + ", ".join(str(p) for p in paths))
        except (SaveError, CheckpointError) as exc:
            _err(str(exc))
            code = code or EXIT_UNREADABLE
        except Exception as exc:  # noqa: BLE001
            _err(f"cannot export the weights to {args.export_weights}: {type(exc).__name__}: "
                 f"{first_line(exc)[:200]}")
            code = code or EXIT_UNREADABLE
    return code


def _print_result(ev) -> None:
    print(f"test accuracy {ev.test_acc:.2%} (loss {ev.test_loss:.4f}) after {ev.epochs} epoch(s), "
          f"{ev.step:,} steps, {ev.seconds:.1f} s")
    names = ev.class_names
    if len(names) <= 20:
        width = max(8, *(len(n) for n in names))
        print(f"  {'class':<{width}}  precision  recall  images")
        support = ev.confusion.sum(axis=1)
        for i, name in enumerate(names):
            prec = "—" if math.isnan(ev.precision[i]) else f"{ev.precision[i]:.1%}"
            rec = "—" if math.isnan(ev.recall[i]) else f"{ev.recall[i]:.1%}"
            print(f"  {name:<{width}}  {prec:>9}  {rec:>6}  {int(support[i]):>6}")


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class _Bar:
    """One self-rewriting line on a terminal; nothing in between epochs when piped."""

    def __init__(self, quiet: bool = False, width: int = 28):
        self.tty = sys.stdout.isatty() and not quiet
        self.width = width
        self.epochs = 0
        self._shown = False
        self._last = 0.0

    def update(self, ev) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and ev.epoch_fraction < 1:
            return
        self._last = now
        filled = int(self.width * ev.epoch_fraction)
        bar = "█" * filled + "·" * (self.width - filled)
        eta = "--:--" if not math.isfinite(ev.eta_s) else format_clock(ev.eta_s)
        line = (f"\repoch {ev.epoch}/{self.epochs} {bar} step {ev.step}/{ev.total_steps} loss {ev.loss:.4f} "
                f"acc {ev.acc:.1%} {ev.images_per_s:,.0f} img/s ETA {eta}")
        sys.stdout.write(line + "\x1b[K")
        sys.stdout.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stdout.write("\r\x1b[K")
            sys.stdout.flush()
            self._shown = False


def format_clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
