"""Checkpoints (everything needed to continue a run exactly) and weight export.

A checkpoint is a plain dict of tensors, numbers, strings and lists, written atomically with
torch.save and read with `torch.load(weights_only=True)`: loading a checkpoint never runs code.
RNG states are stored as tensors and ints for that reason.

Damage is caught before anything resumes: the file carries a SHA-256 of its whole content
(`digest`, over the loaded objects, so it does not depend on torch's file layout) and every field
is checked here for its type, keys and range (`validate`); the engine then checks the state dicts
against the model, optimiser and schedule it has built (`check_model`, `check_optimizer`,
`check_scheduler`). Every failure is a CheckpointError: "checkpoint PATH is damaged: what".
Version 1 files (before checksums) still load, with their fields checked.

Every write goes through `atomic_torch_save` or `export_weights`, whose failures (a full disk, a
folder in the way, no permission) are a SaveError with one line naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import math
import os
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write
from .events import first_line

FORMAT = "cnnbuilder-checkpoint"
VERSION = 2  # 2: with a SHA-256 of the content under CHECKSUM
CHECKSUM = "sha256"
FIELDS = ("format", "version", "config", "graph", "model", "optimizer", "scheduler", "scaler", "epoch", "batch",
          "step", "accum", "history", "rng", "finished")
HISTORY_KEYS = ("epoch", "epoch_step", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_lr", "step", "loss",
                "lr_step", "lr")
EPOCH_HISTORY = HISTORY_KEYS[:7]  # one value per finished epoch
SCALER_KEYS = {"scale": float, "growth_factor": float, "backoff_factor": float, "growth_interval": int,
               "_growth_tracker": int}
# Optimiser settings that describe the implementation, not the run: taken from the optimiser this
# machine builds, so a CUDA run's fused kernels do not follow it to an Apple GPU.
IMPLEMENTATION_FLAGS = ("foreach", "fused", "capturable", "differentiable")
# Schedule entries that advance as it runs; every other entry follows from the settings.
SCHEDULE_PROGRESS = ("last_epoch", "_step_count", "_is_initial", "_get_lr_called_within_step", "_last_lr")


class CheckpointError(Exception):
    """The file is not a usable checkpoint; the message says why."""


class SaveError(Exception):
    """A checkpoint or export could not be written; the one-line message names the file and why."""


def damaged(name: Any, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {name} is damaged: {what}")


# -- checksum -------------------------------------------------------------------------------------

def digest(data: dict[str, Any]) -> str:
    """SHA-256 over every field but the checksum itself: types, dict order, numbers, text and tensor bytes."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in data.items() if k != CHECKSUM})
    return h.hexdigest()


def _feed(h, obj: Any) -> None:
    import torch

    if obj is None:
        h.update(b"N")
    elif isinstance(obj, bool):
        h.update(b"T" if obj else b"F")
    elif isinstance(obj, int):
        n = obj.bit_length() // 8 + 1
        h.update(b"I" + n.to_bytes(8, "little") + obj.to_bytes(n, "little", signed=True))
    elif isinstance(obj, float):
        h.update(b"D" + struct.pack("<d", obj))
    elif isinstance(obj, str):
        raw = obj.encode("utf-8", "surrogatepass")
        h.update(b"S" + len(raw).to_bytes(8, "little") + raw)
    elif isinstance(obj, (list, tuple)):
        h.update((b"L" if isinstance(obj, list) else b"U") + len(obj).to_bytes(8, "little"))
        for v in obj:
            _feed(h, v)
    elif isinstance(obj, dict):
        h.update(b"M" + len(obj).to_bytes(8, "little"))
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        h.update(b"X" + str(t.dtype).encode() + repr(tuple(t.shape)).encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    else:
        raise TypeError(f"a {type(obj).__name__} cannot be stored in a checkpoint")


# -- writing ----------------------------------------------------------------------------------------

def _reason(exc: BaseException) -> str:
    """Why a write failed, in a few words."""
    seen = []  # torch's zip writer turns the OSError of a full disk into a RuntimeError: find the cause
    cause: BaseException | None = exc
    while cause is not None and cause not in seen and not isinstance(cause, OSError):
        seen.append(cause)
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError):
        exc = cause
    if isinstance(exc, OSError):
        known = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                 errno.EACCES: "no permission to write there", errno.EPERM: "no permission to write there",
                 errno.EROFS: "the disk is read-only", errno.EISDIR: "it is a folder",
                 errno.ENOTDIR: "part of the path is a file, not a folder",
                 errno.EEXIST: "part of the path is a file, not a folder",
                 errno.ENAMETOOLONG: "the name is too long"}
        return known.get(exc.errno) or exc.strerror or first_line(exc) or type(exc).__name__
    text = first_line(exc)
    if "write failed" in text or "unexpected pos" in text or "iostream error" in text:
        return "the write failed (is the disk full?)"  # torch's zip writer hides the OS error
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def atomic_write_checked(path: str | os.PathLike, write, what: str) -> Path:
    """atomic_write into `path` (its folder created), every failure a one-line SaveError."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, write)
    except (OSError, RuntimeError, ValueError) as exc:
        raise SaveError(f"cannot write the {what} {path}: {_reason(exc)}") from None


def atomic_torch_save(obj: Any, path: str | os.PathLike, what: str = "file") -> Path:
    import torch

    return atomic_write_checked(path, lambda f: torch.save(obj, f), what)


def save_checkpoint(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint dict (the FIELDS) with its checksum."""
    data = {**data, CHECKSUM: digest(data)}
    return atomic_torch_save(data, path, "checkpoint")


def rng_state() -> dict[str, Any]:
    import torch

    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if state.get("cuda") and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checked contents of a checkpoint file; CheckpointError (naming the file) if it is not one."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        raw = path.read_bytes()  # read first: an OSError from torch.load below is damage, not the disk
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged zip or pickle raises many types
        raise damaged(path, f"not a readable checkpoint file ({type(exc).__name__}: {first_line(exc)[:200]})") from None
    if isinstance(data, dict) and CHECKSUM in data:  # first: a flipped byte in "format" is damage too
        try:
            _check_sum(data)
        except (_Bad, TypeError, RecursionError) as exc:
            raise damaged(path, str(exc) if isinstance(exc, _Bad) else "its contents cannot be checked") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cnnbuilder checkpoint (a bare state_dict? use it with the exported "
                              "code instead)")
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise CheckpointError(f"{path}: written by a newer cnnbuilder (checkpoint version {version})")
    validate(data, path)
    return data


def validate(data: Any, name: Any) -> None:
    """Check every field of a loaded checkpoint for type, keys and range; CheckpointError if one is off."""
    try:
        _validate(data)
    except _Bad as exc:
        raise damaged(name, str(exc)) from None
    except (RecursionError, MemoryError):
        raise damaged(name, "its contents are nested too deeply") from None
    except TypeError as exc:
        raise damaged(name, str(exc)) from None


class _Bad(Exception):
    pass


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v, where: str, lo: int = 0, hi: int = 2**62) -> int:
    if not _is_int(v):
        raise _Bad(f"{where} should be a whole number, not {_kind(v)}")
    if not lo <= v <= hi:
        raise _Bad(f"{where} is out of range")
    return v


def _float(v, where: str, finite: bool = True) -> float:
    if not isinstance(v, float):
        raise _Bad(f"{where} should be a number, not {_kind(v)}")
    if finite and not math.isfinite(v):
        raise _Bad(f"{where} is not a finite number")
    return v


def _dict(v, where: str, keys=None) -> dict:
    if not isinstance(v, dict):
        raise _Bad(f"{where} should be a dictionary, not {_kind(v)}")
    if keys is not None:
        missing = [k for k in keys if k not in v]
        extra = [k for k in v if k not in keys]
        if missing:
            raise _Bad(f"{where} lacks {missing[0]!r}")
        if extra:
            raise _Bad(f"{where} has an unexpected entry {_short(extra[0])}")
    return v


def _tensor(v, where: str, dtype=None, shape=None):
    import torch

    if not isinstance(v, torch.Tensor):
        raise _Bad(f"{where} should be a tensor, not {_kind(v)}")
    if dtype is not None and v.dtype != dtype:
        raise _Bad(f"{where} has type {v.dtype}, expected {dtype}")
    if shape is not None and tuple(v.shape) != tuple(shape):
        raise _Bad(f"{where} has shape {tuple(v.shape)}, expected {tuple(shape)}")
    return v


def _kind(v) -> str:
    import torch

    if v is None:
        return "None"
    if isinstance(v, torch.Tensor):
        return f"a tensor of shape {tuple(v.shape)}"
    return f"a {type(v).__name__}"


def _short(v) -> str:
    from .config import shown

    return shown(v, 40)


def _check_sum(d: dict) -> None:
    if not isinstance(d[CHECKSUM], str) or d[CHECKSUM] != digest(d):
        raise _Bad("its checksum does not match its contents (the file was changed or corrupted)")


def _validate(d: Any) -> None:
    import torch

    from ..project import ProjectError, graph_from_dict
    from .config import ConfigError, TrainConfig

    if not isinstance(d, dict):
        raise _Bad("it is not a dictionary")
    version = _int(d.get("version"), "version", 1, VERSION)
    _dict(d, "the file", FIELDS + ((CHECKSUM,) if version >= 2 or CHECKSUM in d else ()))
    if CHECKSUM in d:
        _check_sum(d)

    config = _dict(d["config"], "config")
    if version >= 2:  # older files may lack settings added since; they take their defaults
        _dict(config, "config", TrainConfig().to_dict())
    try:
        TrainConfig.from_dict(config, strict=True)
    except ConfigError as exc:
        raise _Bad(f"config: {exc}") from None
    try:
        graph = _dict(d["graph"], "graph")
        _dict({k: v for k, v in graph.items() if k != "groups"}, "graph", ("nodes", "edges"))  # groups: optional
        graph_from_dict(graph, "graph")
    except ProjectError as exc:
        raise _Bad(str(exc)) from None

    model = _dict(d["model"], "model")
    if not model:
        raise _Bad("model holds no weights")
    for k, v in model.items():
        if not isinstance(k, str):
            raise _Bad(f"model has a weight named {_short(k)}")
        _tensor(v, f"model[{k!r}]")

    opt = _dict(d["optimizer"], "optimizer", ("state", "param_groups"))
    groups = opt["param_groups"]
    if not isinstance(groups, list) or not groups:
        raise _Bad("optimizer.param_groups should be a non-empty list")
    for i, g in enumerate(groups):
        _dict(g, f"optimizer.param_groups[{i}]")
        params = g.get("params")
        if not isinstance(params, list) or not all(_is_int(p) and p >= 0 for p in params):
            raise _Bad(f"optimizer.param_groups[{i}].params should be a list of parameter numbers")
    for k, st in _dict(opt["state"], "optimizer.state").items():
        _int(k, "an optimizer.state key")
        for name, v in _dict(st, f"optimizer.state[{k}]").items():
            if not isinstance(name, str) or not (v is None or _is_number(v) or isinstance(v, torch.Tensor)):
                raise _Bad(f"optimizer.state[{k}] has an unexpected entry {_short(name)}")

    if d["scheduler"] is not None:
        for k in _dict(d["scheduler"], "scheduler"):
            if not isinstance(k, str):
                raise _Bad(f"scheduler has an unexpected entry {_short(k)}")
    if d["scaler"] is not None:
        sc = _dict(d["scaler"], "scaler", tuple(SCALER_KEYS))
        for k, typ in SCALER_KEYS.items():
            (_float if typ is float else _int)(sc[k], f"scaler.{k}")
        if not sc["scale"] > 0:
            raise _Bad("scaler.scale should be positive")

    epoch, batch, step = (_int(d[k], k) for k in ("epoch", "batch", "step"))
    if batch > step:
        raise _Bad(f"batch {batch} lies beyond step {step}")
    acc = _dict(d["accum"], "accum", ("loss_sum", "correct", "seen"))
    _float(acc["loss_sum"], "accum.loss_sum")
    seen = _int(acc["seen"], "accum.seen")
    _int(acc["correct"], "accum.correct", 0, seen)

    hist = _dict(d["history"], "history", HISTORY_KEYS)
    for k, values in hist.items():
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise _Bad(f"history.{k} should be a list of numbers")
    for k in EPOCH_HISTORY:
        if len(hist[k]) != epoch:
            raise _Bad(f"history.{k} has {len(hist[k])} entries for {epoch} finished epoch(s)")
    if len(hist["step"]) != len(hist["loss"]) or len(hist["lr_step"]) != len(hist["lr"]) or len(hist["step"]) > step:
        raise _Bad("the loss and learning-rate curves in history do not match their steps")

    rng = _dict(d["rng"], "rng", ("torch", "numpy", "python", "cuda"))
    _tensor(rng["torch"], "rng.torch", torch.uint8, tuple(torch.get_rng_state().shape))
    n = _dict(rng["numpy"], "rng.numpy", ("keys", "pos", "has_gauss", "cached_gaussian"))
    keys = _tensor(n["keys"], "rng.numpy.keys", torch.int64, (624,))
    if keys.numel() and not (0 <= int(keys.min()) and int(keys.max()) < 2**32):
        raise _Bad("rng.numpy.keys is out of range")
    _int(n["pos"], "rng.numpy.pos", 0, 624)
    _int(n["has_gauss"], "rng.numpy.has_gauss", 0, 1)
    _float(n["cached_gaussian"], "rng.numpy.cached_gaussian")
    py = _dict(rng["python"], "rng.python", ("version", "state", "gauss"))
    _int(py["version"], "rng.python.version", 3, 3)
    state = _tensor(py["state"], "rng.python.state", torch.int64, (625,))
    if not (0 <= int(state[:624].min()) and int(state[:624].max()) < 2**32 and 0 <= int(state[624]) <= 624):
        raise _Bad("rng.python.state is out of range")
    if py["gauss"] is not None:
        _float(py["gauss"], "rng.python.gauss")
    if not isinstance(rng["cuda"], list):
        raise _Bad("rng.cuda should be a list")
    for i, t in enumerate(rng["cuda"]):
        if _tensor(t, f"rng.cuda[{i}]", torch.uint8).dim() != 1:
            raise _Bad(f"rng.cuda[{i}] should be one row of bytes")
    if not isinstance(d["finished"], bool):
        raise _Bad(f"finished should be true or false, not {_kind(d['finished'])}")


# -- checks against what the run has built ------------------------------------------------------------

def check_model(saved: dict, model, name: Any) -> None:
    """Same weights (names, shapes, types) as the model built from the graph, else CheckpointError."""
    want = model.state_dict()
    missing = [k for k in want if k not in saved]
    extra = [k for k in saved if k not in want]
    if missing or extra:
        detail = f"it lacks {missing[0]!r}" if missing else f"it has {extra[0]!r}, which this model does not"
        raise CheckpointError(f"checkpoint {name} was saved from a different model (its layers differ: {detail})")
    for k, ref in want.items():
        t = saved[k]
        if tuple(t.shape) != tuple(ref.shape):
            raise CheckpointError(f"checkpoint {name} was saved from a different model (its layers or sizes "
                                  f"differ: {k} is {tuple(t.shape)} there, {tuple(ref.shape)} here)")
        if t.dtype != ref.dtype:
            raise damaged(name, f"model[{k!r}] has type {t.dtype}, expected {ref.dtype}")


def check_optimizer(saved: dict, reference: dict, entry: dict, params: list, name: Any) -> None:
    """`reference` is the state_dict of the optimiser built for this run, `entry` what one step puts
    in a parameter's state (`state_entry`), `params` the parameters in order."""
    try:
        _check_optimizer(saved, reference, entry, params)
    except _Bad as exc:
        raise damaged(name, str(exc)) from None


def _check_optimizer(saved: dict, reference: dict, entry: dict, params: list) -> None:
    groups, ref_groups = saved["param_groups"], reference["param_groups"]
    if len(groups) != len(ref_groups):
        raise _Bad(f"optimizer has {len(groups)} parameter group(s), expected {len(ref_groups)}")
    for i, (g, ref) in enumerate(zip(groups, ref_groups, strict=True)):
        where = f"optimizer.param_groups[{i}]"
        _dict(g, where, tuple(ref))
        if g["params"] != ref["params"]:
            raise _Bad(f"{where}.params does not list this model's parameters")
        for k, v in g.items():
            ok = k == "params" or (v is None or isinstance(v, bool) if k in IMPLEMENTATION_FLAGS
                                   else _same_kind(v, ref[k]))
            if not ok:
                raise _Bad(f"{where}.{k} is {_kind(v)}, expected {_kind(ref[k])}")
    state = saved["state"]
    if state and entry and set(state) != set(range(len(params))):
        # Every parameter has state after the first step (none has yet when mixed precision skipped it).
        extra = sorted(set(state) - set(range(len(params))))
        raise _Bad(f"optimizer.state has an entry for parameter {extra[0]}, but the model has {len(params)}"
                   if extra else "optimizer.state lacks some parameters")
    for k, st in state.items():
        if k >= len(params):
            raise _Bad(f"optimizer.state has an entry for parameter {k}, but the model has {len(params)}")
        if set(st) != set(entry):
            raise _Bad(f"optimizer.state[{k}] holds {_short(sorted(map(str, st)))}, expected {sorted(entry)}")
        p = params[k]
        for key, ref in entry.items():
            v, where = st[key], f"optimizer.state[{k}].{key}"
            if ref == "like":
                _tensor(v, where, p.dtype, tuple(p.shape))
            elif isinstance(ref, tuple):  # ("scalar", dtype)
                _tensor(v, where, ref[1], ())
                if not (math.isfinite(float(v)) and float(v) >= 0):
                    raise _Bad(f"{where} should be a non-negative step count")
            elif ref is None and v is not None:
                raise _Bad(f"{where} is {_kind(v)}, expected None")
            elif ref == "number" and not (_is_number(v) and math.isfinite(v)):
                raise _Bad(f"{where} is {_kind(v)}, expected a number")


def state_entry(optimizer_factory) -> dict[str, Any]:
    """What one step puts in the state of a one-element parameter: key -> "like" (a tensor shaped
    like the parameter), ("scalar", dtype) (a 0-d tensor), "number" or None. Empty when the optimiser keeps
    no state (SGD without momentum)."""
    import torch

    w = torch.nn.Parameter(torch.zeros(1, 1))
    opt = optimizer_factory([w])
    w.grad = torch.zeros_like(w)
    opt.step()
    st = opt.state_dict()["state"].get(0, {})
    out = {}
    for k, v in st.items():
        if isinstance(v, torch.Tensor):
            out[k] = "like" if v.dim() == 2 else ("scalar", v.dtype)
        else:
            out[k] = None if v is None else "number"
    return out


def check_scheduler(saved: Any, reference: dict | None, expected_count: int, label: str, name: Any) -> None:
    """The saved schedule against the one this run built from the same settings: everything but its
    progress must be equal, and its step count must be the checkpoint's position."""
    if reference is None:
        if saved is not None:
            raise damaged(name, "it holds a learning-rate schedule, but its settings use none")
        return
    if saved is None:
        raise damaged(name, f"it has no state for its {label} schedule")
    try:
        _dict(saved, "scheduler", tuple(reference))
    except _Bad as exc:
        raise damaged(name, str(exc)) from None
    for k, ref in reference.items():
        v = saved[k]
        if k in SCHEDULE_PROGRESS:
            if not _same_kind(v, ref):
                raise damaged(name, f"scheduler.{k} is {_kind(v)}, expected {_kind(ref)}")
        elif not _equal(v, ref):
            if k in ("total_steps", "T_max") and _is_int(v):
                raise CheckpointError(f"checkpoint {name} does not fit this data: its {label} schedule spans {v} "
                                      f"steps, this run has {ref} (did the images change since it was saved?)")
            raise damaged(name, f"scheduler.{k} does not match its settings")
    if saved["last_epoch"] != expected_count:
        raise damaged(name, f"its schedule has taken {_short(saved['last_epoch'])} steps, expected "
                            f"{expected_count}")


def _same_kind(v, ref) -> bool:
    """Same sort of value: numbers (finite) for numbers, bools for bools, None for None, sequences of
    the same length and kinds, tensors of the same shape."""
    import torch

    if ref is None or isinstance(ref, (bool, str)):
        return type(v) is type(ref)
    if _is_number(ref):
        return _is_number(v) and math.isfinite(v)
    if isinstance(ref, (list, tuple)):
        return (isinstance(v, (list, tuple)) and len(v) == len(ref)
                and all(_same_kind(a, b) for a, b in zip(v, ref, strict=True)))
    if isinstance(ref, dict):
        return isinstance(v, dict) and set(v) == set(ref) and all(_same_kind(v[k], ref[k]) for k in ref)
    if isinstance(ref, torch.Tensor):
        return isinstance(v, torch.Tensor) and v.shape == ref.shape and v.dtype == ref.dtype
    return False


def _equal(v, ref) -> bool:
    import torch

    if isinstance(ref, torch.Tensor):
        return isinstance(v, torch.Tensor) and v.shape == ref.shape and bool((v == ref).all())
    if isinstance(ref, (list, tuple)):
        return (isinstance(v, (list, tuple)) and len(v) == len(ref)
                and all(_equal(a, b) for a, b in zip(v, ref, strict=True)))
    if isinstance(ref, dict):
        return isinstance(v, dict) and set(v) == set(ref) and all(_equal(v[k], ref[k]) for k in ref)
    return type(v) is type(ref) and v == ref


def plain_state_dict(model) -> dict[str, Any]:
    """CPU, contiguous copies: loadable anywhere, and what safetensors requires."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def export_weights(model, graph, directory: str | os.PathLike, stem: str = "model", class_name: str = "Net",
                   title: str = "") -> list[Path]:
    """Write stem.py (the generated code), stem.pt (state_dict) and stem.safetensors side by side.

    `torch.load(stem.pt, weights_only=True)` loads straight into `stem.<class_name>()`. Each file is
    written atomically; a failure is a SaveError naming the file."""
    from safetensors.torch import save as safetensors_bytes

    from ..codegen import generate

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(f"cannot create the folder {directory}: {_reason(exc)}") from None
    gen = generate(graph, class_name=class_name, title=title)
    state = plain_state_dict(model)
    code = gen.code.encode("utf-8")
    py = atomic_write_checked(directory / f"{stem}.py", lambda f: f.write(code), "model code")
    pt = atomic_torch_save(state, directory / f"{stem}.pt", "weights")
    # safetensors refuses tensors that share memory; state_dict copies above never do. Its own
    # save_file reports no error on a full disk, so the bytes go through the checked atomic write.
    blob = safetensors_bytes(state, metadata={"format": "pt", "class": gen.class_name, "generator": "cnnbuilder"})
    st = atomic_write_checked(directory / f"{stem}.safetensors", lambda f: f.write(blob), "weights")
    return [py, pt, st]
