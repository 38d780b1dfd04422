"""The training engine: a generator of plain events, shared by the command line and the GUI.

    trainer = Trainer(graph, TrainConfig(epochs=2), control=TrainControl())
    for event in trainer.run():
        ...                          # BatchMetrics, EpochMetrics, FeatureMaps, Finished, ...

The model is built from the generated code (`codegen.instantiate`), on a snapshot of the graph
taken when the Trainer is made. Control is by `threading.Event`s checked before every batch, so
another thread can stop or pause a run that is busy in its loop. Speed matters on a CPU as much as
on a GPU: images stay in one uint8 tensor on the device and are batched by index, the loss and
accuracy are summed on the device and read only when a (throttled) event goes out, convolutional
models run channels_last, and Adam/AdamW/SGD use torch's fused kernels where available.
"""

from __future__ import annotations

import contextlib
import math
import queue
import random
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codegen import CodegenError, generate, instantiate
from ..graph import Graph
from ..project import graph_to_dict
from ..shapes import analyze
from . import checkpoint as ckpt_mod
from . import distributed, featuremaps, inspect_run, node_weights
from .augment import BatchTransform, batch_generator, epoch_permutation
from .checkpoint import CheckpointError, SaveError
from .config import ConfigError, TrainConfig, resolve_project_path
from .data import DataBundle, DataError, check_fit, load_data
from .devices import DeviceError, amp_enabled, device_name, resolve_device
from .distributed import DistributedError
from .events import (
    Activations,
    BatchMetrics,
    Cancelled,
    CheckpointFailed,
    CheckpointSaved,
    EpochMetrics,
    Event,
    Failed,
    FeatureMaps,
    Finished,
    Notice,
    Paused,
    Resumed,
    Started,
    Status,
    first_line,
)
from .node_weights import WeightsError
from .runlog import RunLog, RunLogError, new_run_dir, tensorboard_missing

# Settings a resumed run may change; everything else comes from the checkpoint so that the data
# order, the schedule and the augmentation continue exactly where they stopped.
RESUME_OVERRIDES = ("epochs", "device", "amp", "num_workers", "log_interval", "feature_interval", "data_root",
                    "download", "tensorboard", "log_dir")


class TrainControl:
    """Thread-safe switches for a running Trainer; every method may be called from any thread."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._checkpoints: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._feature_node: str | None = None
        self._feature_now = threading.Event()
        self._looks: queue.SimpleQueue = queue.SimpleQueue()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run wakes up to see the stop

    def pause(self) -> None:
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def request_checkpoint(self, path: str | Path) -> None:
        """Saved at the next batch boundary; a CheckpointSaved (or Notice on error) follows."""
        self._checkpoints.put(str(path))

    def request_look(self, request) -> None:
        """An inspect.look.LookRequest answered with the live model at the next batch boundary."""
        self._looks.put(request)

    @property
    def feature_node(self) -> str | None:
        return self._feature_node

    def set_feature_node(self, node_id: str | None, now: bool = True) -> None:
        self._feature_node = node_id
        if now and node_id:
            self._feature_now.set()


class _Stopped(Exception):
    pass


class _NonFinite(Exception):
    pass


@dataclass
class _Progress:
    epoch: int = 0  # 0-based epoch in progress
    batch: int = 0  # batches done in that epoch
    step: int = 0  # optimiser steps done in the whole run
    loss_sum: float = 0.0  # this epoch so far
    correct: int = 0
    seen: int = 0


def new_history() -> dict[str, list[float]]:
    return {k: [] for k in ckpt_mod.HISTORY_KEYS}


def batches_per_epoch(n: int, batch_size: int) -> int:
    # A trailing batch of one image is dropped: BatchNorm cannot train on it.
    if n > batch_size and n % batch_size == 1:
        return n // batch_size
    return max(1, math.ceil(n / batch_size))


class Trainer:
    """Under torchrun (a torch.distributed process group is initialised), each process trains on its
    share of every batch: `config.batch_size` is per process, the model is wrapped in
    DistributedDataParallel, and the epoch metrics are all-reduced. Only rank 0 writes the run log.

    `log_dir`: write metrics.csv (and TensorBoard event files when `config.tensorboard`) into a new
    folder `<log_dir>/<run_name>` (None: no run log).

    `activations`: probe every block's activations a few times an epoch (Activations events).

    `project_file`: the project's file, against whose folder a relative `config.init_weights` is
    resolved (None: the working folder)."""

    def __init__(self, graph: Graph, config: TrainConfig | None = None, *, control: TrainControl | None = None,
                 run_id: int = 0, resume: str | Path | dict | None = None, bundle: DataBundle | None = None,
                 log_dir: str | Path | None = None, run_name: str = "run", activations: bool = True,
                 project_file: str | Path | None = None):
        self.graph = graph.copy()  # the run never sees later edits
        self.config = config or TrainConfig()
        self.control = control or TrainControl()
        self.run_id = run_id
        self.resume = resume
        self.bundle = bundle  # pre-loaded data (the GUI caches it between runs)
        self.model = None
        self.optimizer = None
        self.scheduler = None
        self.scaler = None
        self.device = None
        self.history = new_history()
        self.progress = _Progress()
        self.result: Finished | None = None
        self._gen = None
        self._sample = None
        self._sample_label = 0
        self._probe = None  # the normalised activation probe batch on the device
        self._out_is_prob = False  # the model ends in Softmax: its outputs are the probabilities
        self._test_predictions: tuple = (None, None, None)
        self._acc_loss = None  # device-side epoch accumulators
        self._acc_correct = None
        self.log_dir = log_dir
        self.run_name = run_name
        self.run_dir: Path | None = None  # where this run's log went (rank 0)
        self._log: RunLog | None = None
        self.rank, self.world_size = 0, 1
        self.probe_activations = activations  # send Activations events (off: only for benchmarks)
        self.project_file = project_file

    # -- public ------------------------------------------------------------------------------
    def run(self) -> Iterator[Event]:
        """Yields events until exactly one of Finished, Failed or Cancelled, then ends."""
        start = time.perf_counter()
        try:
            yield from self._run(start)
        except _Stopped:
            yield Cancelled(self.run_id, self.progress.epoch + 1, self.progress.step)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a traceback
            yield self._failure(exc)
        finally:
            if self._log is not None:
                self._log.close()
            self._release_memory()

    def save_checkpoint(self, path: str | Path) -> Path:
        """Everything to continue this run exactly. Call between batches (from the run's thread)
        or after the run has ended. A failed write is a SaveError naming the file."""
        if self.model is None:
            raise CheckpointError("nothing to save yet: the model has not been built")
        p = self.progress
        data = {
            "format": ckpt_mod.FORMAT,
            "version": ckpt_mod.VERSION,
            "config": self.config.to_dict(),
            "graph": graph_to_dict(self.graph),
            "model": ckpt_mod.plain_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": p.epoch,
            "batch": p.batch,
            "step": p.step,
            "accum": {"loss_sum": float(self._acc_loss) if self._acc_loss is not None else p.loss_sum,
                      "correct": int(self._acc_correct) if self._acc_correct is not None else p.correct,
                      "seen": p.seen},
            "history": {k: list(v) for k, v in self.history.items()},
            "rng": ckpt_mod.rng_state(),
            "finished": self.result is not None,
        }
        return ckpt_mod.save_checkpoint(data, path)

    @property
    def code(self) -> str | None:
        """The generated code this run's model was built from (None before it is built)."""
        return self._gen.code if self._gen is not None else None

    def export_weights(self, directory: str | Path, stem: str = "model", class_name: str = "Net",
                       title: str = "") -> list[Path]:
        if self.model is None:
            raise CheckpointError("nothing to export yet: the model has not been built")
        return ckpt_mod.export_weights(self.model, self.graph, directory, stem, class_name, title)

    def feature_maps(self, node_id: str) -> FeatureMaps:
        """The block's output for the fixed sample with the current weights (after or between batches)."""
        if self.model is None or self._sample is None:
            return FeatureMaps(self.run_id, node_id, self.progress.step, featuremaps.no_maps(), 0, 0, "no model yet")
        maps, total, msg = featuremaps.capture(self.model, self.graph, self._gen.attr_of, node_id, self._sample)
        return FeatureMaps(self.run_id, node_id, self.progress.step, maps, total, self._sample_label, msg)

    def _serve_looks(self) -> Iterator[Event]:
        """Requests of the Look inside tab, with the weights as they are now (inspect/look.py)."""
        from ..inspect.look import look

        while not self.control._looks.empty():
            req = self.control._looks.get()
            yield look(req, self.model, self.bundle, f"the live model at step {self.progress.step:,}")

    def activations(self) -> Activations:
        """Every block's activation statistics on the probe batch with the current weights."""
        p = self.progress
        stats = inspect_run.activation_stats(self.model, self.graph, self._gen.attr_of, self._probe)
        col = lambda f: np.array([getattr(b, f) for b in stats], dtype=np.float32)
        return Activations(self.run_id, p.step, p.epoch + 1 if p.step else 0, tuple(b.node_id for b in stats),
                           col("mean"), col("std"), col("dead"))

    # -- the run -----------------------------------------------------------------------------
    def _run(self, start: float) -> Iterator[Event]:
        import torch

        ctl = self.control
        cfg = self.config.check()
        saved = None
        if self.resume is not None:
            if isinstance(self.resume, dict):
                saved = self.resume
                ckpt_mod.validate(saved, self._resume_name)
            else:
                saved = ckpt_mod.load_checkpoint(self.resume)
            if ckpt_mod.CHECKSUM not in saved:
                yield Notice(self.run_id, f"checkpoint {self._resume_name} was written by an older cnnbuilder and "
                                          "carries no checksum: damage to its weights cannot be detected")
            cfg, notes = _resume_config(saved, cfg)
            for note in notes:
                yield Notice(self.run_id, note)
        self.config = cfg
        for note in cfg.notes:
            yield Notice(self.run_id, note)
        self.rank, self.world_size = rank, world = distributed.world()
        if cfg.tensorboard and self.log_dir is not None and (missing := tensorboard_missing()):
            raise RunLogError(missing)

        analysis = analyze(self.graph)
        if not analysis.ok:
            first = [p.message if p.node_id is None else f"{self.graph.node(p.node_id).label}: {p.message}"
                     for p in analysis.problems[:3]]
            yield Failed(self.run_id, "the model has problems; fix them before training:\n" + "\n".join(first),
                         "model")
            return
        device = resolve_device(cfg.device)
        self.device = device

        serial = world > 1 and cfg.download  # rank 0 downloads alone; the others then read its files
        if serial and rank != 0:
            distributed.barrier()
        if self.bundle is None or self.bundle.key != cfg.data_key():
            yield Status(self.run_id, f"Loading {cfg.dataset}…")
            try:
                self.bundle = load_data(cfg, lambda: ctl.stopped)
            except DataError:
                if ctl.stopped:
                    raise _Stopped from None
                raise
        if serial and rank == 0:
            distributed.barrier()
        bundle = self.bundle
        if ctl.stopped:
            raise _Stopped
        mismatches = check_fit(self.graph, analysis, bundle.meta)
        if mismatches:
            yield Failed(self.run_id, "the model does not fit the data:\n" + "\n".join(m.message for m in mismatches),
                         "model")
            return
        if bundle.skipped:
            shown = "\n".join(bundle.skipped[:10])
            more = f"\n… and {len(bundle.skipped) - 10} more" if len(bundle.skipped) > 10 else ""
            yield Notice(self.run_id, f"skipped {len(bundle.skipped)} unreadable image(s):\n{shown}{more}")
        for note in bundle.notes:
            yield Notice(self.run_id, note)
        out_type = self.graph.node(analysis.output_id).type
        if cfg.loss == "nll" and out_type != "LogSoftmax":
            yield Notice(self.run_id, "the NLL loss expects log-probabilities: end the model with LogSoftmax "
                                      "(or use cross-entropy, which includes it)")
        if cfg.loss == "cross_entropy" and out_type in ("Softmax", "LogSoftmax"):
            yield Notice(self.run_id, f"the model ends in {out_type} but cross-entropy applies its own softmax: "
                                      "remove the last activation or use the NLL loss")

        # -- model, optimiser, schedule ------------------------------------------------------
        yield Status(self.run_id, "Building the model…")
        _seed_everything(cfg.seed)
        self._gen = generate(self.graph, analysis=analysis)
        model = instantiate(self._gen)
        if cfg.init_weights and saved is None:  # a resumed run takes its weights from the checkpoint
            yield from self._start_from_weights(model, cfg.init_weights)
        conv = any(n.type in ("Conv2d", "ConvTranspose2d") for n in self.graph)
        use_cl = cfg.channels_last == "on" or (cfg.channels_last == "auto" and conv and len(bundle.shape) == 3
                                               and device.type != "mps")
        memory_format = torch.channels_last if use_cl else None
        model = model.to(device)
        if use_cl:
            model = model.to(memory_format=torch.channels_last)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels once
        amp = amp_enabled(cfg.amp, device)
        if bundle.in_memory and device.type != "cpu":
            bundle = _place(bundle, device)
        n_train = len(bundle.train)
        if world > 1:
            # Every process takes an equal slice of each global batch of bs × world images, so the
            # averaged gradient is that of one process with the whole batch; a last, incomplete
            # global batch is dropped (processes must take the same number of steps).
            if n_train < world:
                raise ConfigError("batch_size", f"{n_train} training images cannot be shared by {world} processes")
            bs = min(cfg.batch_size, n_train // world)
            spe = n_train // (bs * world)
        else:
            bs = min(cfg.batch_size, n_train)
            spe = batches_per_epoch(n_train, bs)
        total_steps = spe * cfg.epochs
        self.optimizer = _make_optimizer(cfg, _trainable(model), device)
        self.scheduler, per_step = _make_scheduler(cfg, self.optimizer, spe, total_steps)
        self.scaler = torch.amp.GradScaler("cuda") if amp else None
        k = bundle.meta.num_classes
        loss_fn = _make_loss(cfg, k)
        transform = BatchTransform(cfg, bundle.mean, bundle.std, bundle.shape[0], device)
        x0, self._sample_label = bundle.probe()
        self._sample = transform(x0.unsqueeze(0).to(device))
        self._probe = transform(inspect_run.probe_batch(bundle).to(device), memory_format=memory_format)
        self._out_is_prob = out_type == "Softmax"
        # Activation statistics a few times an epoch: one no-grad forward pass of the probe batch.
        probe_every = max(1, spe // inspect_run.PROBES_PER_EPOCH)

        p = self.progress
        if saved is not None:
            self._restore(saved, model, spe, per_step)
        self.model = model  # only now: a checkpoint that failed to load leaves nothing to save or export
        net = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            # Wrapped after restoring: DDP starts by broadcasting rank 0's weights to every process.
            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if self.log_dir is not None and rank == 0:
            self.run_dir = new_run_dir(self.log_dir, self.run_name)
            self._log = RunLog(self.run_dir, tensorboard=cfg.tensorboard)
            self._log.history(self.history)
        acc_loss = torch.tensor(p.loss_sum, dtype=torch.float32, device=device)
        acc_correct = torch.tensor(p.correct, dtype=torch.int64, device=device)
        self._acc_loss, self._acc_correct = acc_loss, acc_correct

        yield Started(self.run_id, str(device), device_name(device), bundle.meta.name, bundle.meta.class_names,
                      tuple(bundle.shape), n_train, len(bundle.val) if bundle.val is not None else 0,
                      len(bundle.test), cfg.epochs, spe, total_steps, p.step, p.epoch + 1, amp, bundle.in_memory,
                      cfg.to_dict(), {key: list(v) for key, v in self.history.items()},
                      str(self.run_dir) if self.run_dir else "", world)
        if ctl.feature_node:
            ctl._feature_now.clear()
            yield self.feature_maps(ctl.feature_node)
        probing = rank == 0 and self.probe_activations
        if probing:
            yield self.activations()

        autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if amp else contextlib.nullcontext
        clip = cfg.grad_clip
        opt, scaler, sched = self.optimizer, self.scaler, self.scheduler
        pending: list = []
        rate = _Rate()
        t_emit = time.perf_counter()
        t_feat = t_emit
        imgs_since = 0
        eval_imgs = (len(bundle.val) if bundle.val is not None else 0)

        while p.epoch < cfg.epochs:
            epoch_start = time.perf_counter()
            model.train()
            batches = self._batches(bundle, cfg, bs, spe, p.epoch, p.batch, device, rank, world)
            for b in range(p.batch, spe):
                if ctl._stop.is_set():
                    raise _Stopped
                if not ctl._running.is_set():
                    paused_at = time.perf_counter()
                    yield Paused(self.run_id, p.step)
                    # Waits (stop() wakes it too), answering Look inside requests meanwhile: a paused
                    # run is a good moment to look at its model.
                    while not ctl._running.wait(0.2):
                        if not ctl._looks.empty():
                            yield from self._serve_looks()
                    if ctl._stop.is_set():
                        raise _Stopped
                    resumed = time.perf_counter()
                    t_emit += resumed - paused_at  # paused time is not training time
                    t_feat += resumed - paused_at
                    yield Resumed(self.run_id, p.step)
                if not ctl._checkpoints.empty():
                    self._sync_progress()
                    yield from self._serve_checkpoints()

                xb, yb = next(batches)
                gen = batch_generator(cfg.seed, p.epoch, b) if cfg.augments else None
                xb = transform(xb, train=True, generator=gen, memory_format=memory_format)
                with autocast():
                    out = net(xb)
                loss = loss_fn(out.float(), yb)  # float32 loss even under autocast
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if clip:
                        scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    if clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                    opt.step()
                if per_step:
                    sched.step()
                nb = yb.shape[0]
                with torch.no_grad():
                    ld = loss.detach()
                    acc_loss += ld * nb
                    acc_correct += (out.argmax(1) == yb).sum()
                pending.append(ld)
                p.batch = b + 1
                p.step += 1
                p.seen += nb
                imgs_since += nb

                now = time.perf_counter()
                last = b + 1 == spe
                if last or now - t_emit >= cfg.log_interval:
                    losses = torch.stack(pending).float().cpu().numpy()  # the only sync point
                    steps = np.arange(p.step - len(losses) + 1, p.step + 1, dtype=np.int64)
                    pending.clear()
                    # Under torchrun this waits for the epoch's all-reduced loss: a process that
                    # stopped here alone would leave the others waiting in a collective.
                    if world == 1 and not np.isfinite(losses).all():
                        bad = int(steps[np.argmax(~np.isfinite(losses))])
                        raise _NonFinite(bad)
                    ips = rate.update(imgs_since, now - t_emit)
                    imgs_since = 0
                    t_emit = now
                    lr = _lr(opt)
                    remaining = (total_steps - p.step) * bs + (cfg.epochs - p.epoch) * eval_imgs / 3 + \
                        len(bundle.test) / 3
                    acc = float(acc_correct) / max(1, p.seen)
                    self.history["step"].extend(steps.tolist())
                    self.history["loss"].extend(losses.tolist())
                    self.history["lr_step"].append(p.step)
                    self.history["lr"].append(lr)
                    if self._log is not None:
                        self._log.steps(steps, losses, p.step, lr)
                    yield BatchMetrics(self.run_id, p.epoch + 1, p.step, total_steps, steps, losses,
                                       float(losses.mean()), acc, lr, ips, remaining / ips if ips > 0 else math.inf,
                                       p.batch / spe)
                if probing and (p.step % probe_every == 0 or last):
                    yield self.activations()
                if ctl._feature_node and (ctl._feature_now.is_set() or now - t_feat >= cfg.feature_interval):
                    ctl._feature_now.clear()
                    yield self.feature_maps(ctl._feature_node)
                    t_feat = time.perf_counter()
                if not ctl._looks.empty():
                    yield from self._serve_looks()

            # -- end of epoch ---------------------------------------------------------------------
            self._sync_progress()
            loss_sum, correct, seen = p.loss_sum, p.correct, p.seen
            if world > 1:
                t = distributed.all_reduce_sum(torch.tensor([loss_sum, correct, seen], dtype=torch.float64,
                                                            device=device)).tolist()
                loss_sum, correct, seen = t[0], int(t[1]), int(t[2])
            train_loss = loss_sum / max(1, seen)
            train_acc = correct / max(1, seen)
            val_loss = val_acc = None
            if bundle.val is not None:
                val_loss, val_acc, _ = self._evaluate(bundle.val, bundle, transform, loss_fn, autocast, bs,
                                                      memory_format, k)
            lr = _lr(opt)
            if sched is not None and not per_step:
                sched.step()
            h = self.history
            h["epoch"].append(p.epoch + 1)
            h["epoch_step"].append(p.step)
            h["train_loss"].append(train_loss)
            h["train_acc"].append(train_acc)
            h["val_loss"].append(math.nan if val_loss is None else val_loss)
            h["val_acc"].append(math.nan if val_acc is None else val_acc)
            h["epoch_lr"].append(lr)
            seconds = time.perf_counter() - epoch_start
            ev = EpochMetrics(self.run_id, p.epoch + 1, p.step, train_loss, train_acc, val_loss, val_acc, lr, seconds)
            if self._log is not None:
                self._log.epoch(ev.epoch, ev.step, train_loss, train_acc, val_loss, val_acc, lr, seconds)
            p.epoch += 1
            p.batch = p.seen = p.correct = 0
            p.loss_sum = 0.0
            acc_loss.zero_()
            acc_correct.zero_()
            if not math.isfinite(train_loss):
                raise _NonFinite(p.step)
            yield ev

        # -- test ------------------------------------------------------------------------------
        yield Status(self.run_id, "Testing…")
        test_loss, test_acc, confusion = self._evaluate(bundle.test, bundle, transform, loss_fn, autocast, bs,
                                                        memory_format, k, confusion=True)
        test_true, test_pred, test_prob = self._test_predictions
        precision, recall = per_class(confusion)
        if self._log is not None:
            self._log.test(p.step, test_loss, test_acc)
        if ctl._feature_node:
            yield self.feature_maps(ctl._feature_node)
        self.result = Finished(self.run_id, cfg.epochs, p.step, test_loss, test_acc, confusion, precision, recall,
                               bundle.meta.class_names, time.perf_counter() - start,
                               {key: list(v) for key, v in self.history.items()}, test_true, test_pred, test_prob)
        if not ctl._checkpoints.empty():
            yield from self._serve_checkpoints()
        if not ctl._looks.empty():
            yield from self._serve_looks()
        yield self.result

    # -- pieces --------------------------------------------------------------------------------
    def _batches(self, bundle, cfg, bs, spe, epoch, start, device, rank=0, world=1):
        """(uint8 images, labels) on the device for batches start..spe-1 of this epoch; with several
        processes, this process's slice of each global batch (the same permutation everywhere)."""

        n = len(bundle.train)
        perm = epoch_permutation(cfg.seed, epoch, n)[: spe * bs * world]
        if world > 1:
            perm = perm.view(spe, world, bs)[:, rank].reshape(-1)
        if bundle.in_memory:
            x, y = bundle.train.x, bundle.train.y
            perm = perm.to(x.device)
            same = x.device == device
            for b in range(start, spe):
                idx = perm[b * bs:(b + 1) * bs]
                if same:
                    yield x.index_select(0, idx), y.index_select(0, idx)
                else:  # data kept in (pinned) host memory, model on the GPU
                    yield (x.index_select(0, idx).pin_memory().to(device, non_blocking=True),
                           y.index_select(0, idx).to(device, non_blocking=True))
            return
        loader = _loader(bundle.train, perm[start * bs:].tolist(), bs, cfg, device)
        for xb, yb in loader:
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)

    def _evaluate(self, split, bundle, transform, loss_fn, autocast, bs, memory_format, k, confusion=False):
        import torch

        model = self.model
        device = self.device
        ebs = max(bs, min(4 * bs, 1024))
        total_loss = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        conf = torch.zeros(k * k, dtype=torch.int64, device=device) if confusion else None
        kept: list = []  # per batch (true, predicted, probability), for the mistakes gallery
        n = 0
        model.eval()
        try:
            with torch.no_grad():
                for xb, yb in _eval_batches(split, bundle, ebs, self.config, device, self.rank, self.world_size):
                    if self.control._stop.is_set():
                        raise _Stopped
                    xb = transform(xb, memory_format=memory_format)
                    with autocast():
                        out = model(xb)
                    out = out.float()
                    total_loss += loss_fn(out, yb).double() * yb.shape[0]
                    pred = out.argmax(1)
                    correct += (pred == yb).sum()
                    if conf is not None:
                        conf += torch.bincount(yb * k + pred, minlength=k * k)
                        probs = out if self._out_is_prob else out.softmax(1)
                        kept.append((yb, pred, probs.gather(1, pred.view(-1, 1)).view(-1)))
                    n += yb.shape[0]
        finally:
            model.train()
        if self.world_size > 1:  # each process evaluated its own share of the split
            sums = distributed.all_reduce_sum(torch.stack([total_loss, correct.double(),
                                                           torch.tensor(float(n), dtype=torch.float64,
                                                                        device=device)]))
            total_loss, correct, n = sums[0], sums[1], int(sums[2])
            if conf is not None:
                distributed.all_reduce_sum(conf)
        n = max(1, n)
        cm = conf.view(k, k).cpu().numpy() if conf is not None else None
        if conf is not None:
            # Only a single process has every test image's prediction (under torchrun: none kept).
            self._test_predictions = (None, None, None) if self.world_size > 1 or not kept else tuple(
                torch.cat(col).cpu().numpy().astype(dt) for col, dt in
                zip(zip(*kept, strict=False), (np.int64, np.int64, np.float32), strict=True))
        return float(total_loss) / n, float(correct) / n, cm

    def _sync_progress(self) -> None:
        if self._acc_loss is not None:
            self.progress.loss_sum = float(self._acc_loss)
            self.progress.correct = int(self._acc_correct)

    def _serve_checkpoints(self) -> Iterator[Event]:
        while not self.control._checkpoints.empty():
            path = self.control._checkpoints.get()
            try:
                written = self.save_checkpoint(path)
            except Exception as exc:  # noqa: BLE001 - a failed save must not end the run
                message = str(exc) if isinstance(exc, SaveError) else \
                    f"cannot write the checkpoint {path}: {type(exc).__name__}: {first_line(exc)[:200]}"
                yield CheckpointFailed(self.run_id, str(path), message)
            else:
                yield CheckpointSaved(self.run_id, str(written), self.progress.step)

    @property
    def _resume_name(self) -> str:
        return "(given in memory)" if isinstance(self.resume, dict) else str(self.resume)

    def _restore(self, saved: dict, model, spe: int, per_step: bool) -> None:
        """Load a validated checkpoint into the freshly built run, after checking every state dict
        against what this run built: nothing is resumed from a checkpoint that does not fit."""
        import torch

        name = self._resume_name
        if saved["batch"] > spe:
            raise CheckpointError(f"checkpoint {name} does not fit this data: it stopped at batch {saved['batch']} "
                                  f"of an epoch that now has {spe} (did the images change since it was saved?)")
        ckpt_mod.check_model(saved["model"], model, name)
        params = _trainable(model)
        cfg = self.config
        entry = ckpt_mod.state_entry(lambda ps: _make_optimizer(cfg, ps, torch.device("cpu")))
        reference = self.optimizer.state_dict()
        ckpt_mod.check_optimizer(saved["optimizer"], reference, entry, params, name)
        if self.scheduler is not None:
            expected = saved["step"] if per_step else saved["epoch"]
            ckpt_mod.check_scheduler(saved["scheduler"], self.scheduler.state_dict(), expected,
                                     _SCHEDULE_LABEL.get(cfg.scheduler, cfg.scheduler), name)
        else:
            ckpt_mod.check_scheduler(saved["scheduler"], None, 0, "", name)
        try:
            model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            for group, ref in zip(self.optimizer.param_groups, reference["param_groups"], strict=True):
                group.update({k: ref[k] for k in ckpt_mod.IMPLEMENTATION_FLAGS if k in ref})
            if self.scheduler is not None:
                self.scheduler.load_state_dict(saved["scheduler"])
            if self.scaler is not None and saved["scaler"] is not None:
                self.scaler.load_state_dict(saved["scaler"])
            ckpt_mod.set_rng_state(saved["rng"])
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise ckpt_mod.damaged(name, f"{type(exc).__name__}: {first_line(exc)[:300]}") from None
        p = self.progress
        p.epoch, p.batch, p.step = saved["epoch"], saved["batch"], saved["step"]
        acc = saved["accum"]
        p.loss_sum, p.correct, p.seen = acc["loss_sum"], acc["correct"], acc["seen"]
        hist = new_history()
        for key, values in saved["history"].items():
            hist[key] = [float(v) for v in values]
        self.history = hist

    def _start_from_weights(self, model, setting: str) -> Iterator[Event]:
        """Fine-tuning: copy the weights file's tensors into the fresh model, block by block; what
        does not fit is reported, a file that cannot be read (or fits nothing) stops the run."""
        path = resolve_project_path(setting, self.project_file)
        name = Path(path).name
        yield Status(self.run_id, f"Loading the weights {name}…")
        blocks = node_weights.load(path)
        done = node_weights.apply(model, self.graph, self._gen.attr_of, blocks)
        if done.total and not done.loaded:
            raise WeightsError(f"{path}: none of its weights fit this model ({done.summary()}); choose the "
                               "weights file made for this model, or clear \"Start from\" to train from scratch")
        yield Notice(self.run_id, f"started from {name}: {done.summary()}")

    def _failure(self, exc: Exception) -> Failed:
        import torch

        rid = self.run_id
        if isinstance(exc, _NonFinite):
            lr = self.config.lr
            return Failed(rid, f"the loss became infinite or NaN at step {exc.args[0]}: training diverged. "
                               f"Lower the learning rate (it is {lr:g}; try {lr / 10:g}), or turn on gradient "
                               "clipping.", "nan")
        oom = isinstance(exc, torch.cuda.OutOfMemoryError) or (
            isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())
        if oom:
            bs = self.config.batch_size
            return Failed(rid, f"the GPU ran out of memory with batch size {bs}: use a smaller batch "
                               f"(try {max(1, bs // 2)}), mixed precision, or a smaller model.", "oom")
        if self.world_size > 1 and distributed.is_comm_error(exc):
            return Failed(rid, "lost contact with the other processes of this torchrun job (one of them stopped; "
                               f"its own message says why): {first_line(exc)[:300]}", "error")
        kinds = ((ConfigError, "config"), (DeviceError, "device"), (DataError, "data"), (CheckpointError, "checkpoint"),
                 (CodegenError, "model"), (RunLogError, "config"), (DistributedError, "device"),
                 (WeightsError, "weights"))
        for cls, kind in kinds:
            if isinstance(exc, cls):
                return Failed(rid, str(exc), kind)
        return Failed(rid, f"training stopped by an error: {type(exc).__name__}: {first_line(exc)[:500]}", "error",
                      traceback.format_exc())

    def _release_memory(self) -> None:
        try:
            import torch

            if self.device is not None and self.device.type == "cuda":
                torch.cuda.empty_cache()
        except Exception:  # best effort while unwinding
            pass


# -- helpers ------------------------------------------------------------------------------------

class _Rate:
    """Images per second over the last event interval, smoothed for the ETA."""

    def __init__(self) -> None:
        self.ema = 0.0

    def update(self, images: int, seconds: float) -> float:
        now = images / seconds if seconds > 0 else 0.0
        self.ema = now if self.ema == 0 else 0.8 * self.ema + 0.2 * now
        return self.ema


def _seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _lr(opt) -> float:
    return float(opt.param_groups[0]["lr"])


def _trainable(model) -> list:
    return [q for q in model.parameters() if q.requires_grad]


_SCHEDULE_LABEL = {"step": "step-decay", "cosine": "cosine", "onecycle": "one-cycle"}


def _make_optimizer(cfg: TrainConfig, params: list, device):
    import torch

    if not params:
        raise ConfigError("model", "the model has no trainable parameters (add a Conv2d or Linear block)")
    wd = cfg.weight_decay
    name = cfg.optimizer
    if name == "sgd":
        make = lambda **kw: torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                            nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=wd, **kw)
    elif name == "adam":
        make = lambda **kw: torch.optim.Adam(params, lr=cfg.lr, weight_decay=wd, **kw)
    elif name == "adamw":
        make = lambda **kw: torch.optim.AdamW(params, lr=cfg.lr, weight_decay=wd, **kw)
    else:
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd)
    if device.type in ("cpu", "cuda"):
        try:  # one kernel for all parameters instead of a dozen small ops per tensor
            return make(fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return make()


def _make_scheduler(cfg: TrainConfig, opt, steps_per_epoch: int, total_steps: int):
    """(scheduler or None, stepped per batch?)."""
    import torch.optim.lr_scheduler as S

    if cfg.scheduler == "step":
        return S.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma), False
    if cfg.scheduler == "cosine":
        return S.CosineAnnealingLR(opt, T_max=max(1, total_steps)), True
    if cfg.scheduler == "onecycle":
        return S.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(2, total_steps)), True
    return None, False


def _make_loss(cfg: TrainConfig, k: int):
    """loss(outputs, class labels); MSE compares the outputs with one-hot targets of the k classes."""
    import torch.nn as nn
    import torch.nn.functional as F

    if cfg.loss == "mse":
        mse = nn.MSELoss()
        return lambda out, y: mse(out, F.one_hot(y, k).float())
    return {"cross_entropy": nn.CrossEntropyLoss, "nll": nn.NLLLoss}[cfg.loss]()


def _place(bundle: DataBundle, device) -> DataBundle:
    """Images on the GPU when they take under half of its free memory; else pinned host memory."""
    import torch

    size = sum(s.x.numel() + s.y.numel() * 8 for s in (bundle.train, bundle.val, bundle.test) if s is not None)
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
        except RuntimeError:
            free = 0
        if size > free // 2:
            return bundle
    return bundle.to(device)


def _loader(dataset, indices, bs, cfg: TrainConfig, device):
    import os

    import torch
    from torch.utils.data import DataLoader

    workers = cfg.num_workers if cfg.num_workers >= 0 else min(8, max(1, (os.cpu_count() or 2) - 1))
    g = torch.Generator()
    g.manual_seed(cfg.seed)  # keeps the loader from drawing on the global RNG (resume must replay it)
    return DataLoader(dataset, batch_size=bs, sampler=indices, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=False, generator=g,
                      prefetch_factor=4 if workers else None)


def _eval_batches(split, bundle, bs, cfg, device, rank=0, world=1):
    """Batches of this process's contiguous share of the split (all of it alone)."""
    lo, hi = rank * len(split) // world, (rank + 1) * len(split) // world
    if bundle.in_memory:
        x, y = split.x, split.y
        for s in range(lo, hi, bs):
            e = min(s + bs, hi)
            xb, yb = x[s:e], y[s:e]
            if xb.device != device:
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            yield xb, yb
        return
    for xb, yb in _loader(split, list(range(lo, hi)), bs, cfg, device):
        yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


def per_class(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall per class from a confusion matrix (rows true, columns predicted)."""
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), np.nan)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), np.nan)
    return precision, recall


def _resume_config(saved: dict, current: TrainConfig) -> tuple[TrainConfig, list[str]]:
    old = TrainConfig.from_dict(saved.get("config") or {})
    notes = []
    cfg = TrainConfig.from_dict({**old.to_dict(), **{k: getattr(current, k) for k in RESUME_OVERRIDES}})
    if not current.data_root:
        cfg.data_root = old.data_root
    if cfg.scheduler in ("cosine", "onecycle") and cfg.epochs != old.epochs:
        notes.append(f"the {cfg.scheduler} schedule was planned for {old.epochs} epochs: continuing with "
                     f"{old.epochs}")
        cfg.epochs = old.epochs
    done = int(saved.get("epoch", 0))
    if cfg.epochs < done:
        notes.append(f"the checkpoint has already trained {done} epochs; nothing left to train "
                     f"(raise Epochs above {done} to continue)")
        cfg.epochs = done
    return cfg, notes


def feature_maps_for(graph: Graph, cfg: TrainConfig, node_id: str, bundle: DataBundle | None = None,
                     model=None, seed: int | None = None) -> FeatureMaps:
    """Feature maps outside a run: with `model` (e.g. the last run's weights) or a freshly
    initialised one; the sample is the dataset's fixed probe image."""
    import torch

    analysis = analyze(graph)
    if not analysis.ok:
        return FeatureMaps(-1, node_id, 0, featuremaps.no_maps(), 0, 0,
                           "fix the model's problems to see its feature maps")
    bundle = bundle or load_data(cfg)
    if tuple(analysis.input_shape) != tuple(bundle.shape):
        return FeatureMaps(-1, node_id, 0, featuremaps.no_maps(), 0, 0,
                           "the Input shape does not match the dataset's images")
    gen = generate(graph, analysis=analysis)
    if model is None:
        torch.manual_seed(cfg.seed if seed is None else seed)
        model = instantiate(gen)
    device = next(iter(model.parameters()), torch.zeros(())).device
    transform = BatchTransform(cfg, bundle.mean, bundle.std, bundle.shape[0], device)
    x0, label = bundle.probe()
    sample = transform(x0.unsqueeze(0).to(device))
    maps, total, msg = featuremaps.capture(model, graph, gen.attr_of, node_id, sample)
    return FeatureMaps(-1, node_id, 0, maps, total, label, msg)
