"""Checkpoints (everything needed to continue a run exactly) and weight export.

A checkpoint is a plain dict of tensors, numbers, strings and lists, written atomically with
torch.save and read with `torch.load(weights_only=True)`: loading a checkpoint never runs code.
RNG states are stored as tensors and ints for that reason.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write
from .events import first_line

FORMAT = "cnnbuilder-checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """The file is not a usable checkpoint; the message says why."""


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


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as exc:
        first = first_line(exc) or type(exc).__name__
        raise CheckpointError(f"{path}: not a cnnbuilder checkpoint, or damaged ({first[:200]})") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cnnbuilder checkpoint (a bare state_dict? use it with the exported "
                              "code instead)")
    if data.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: written by a newer cnnbuilder (checkpoint version {data.get('version')})")
    return data


def plain_state_dict(model) -> dict[str, Any]:
    """CPU, contiguous copies: loadable anywhere, and what safetensors requires."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def export_weights(model, graph, directory: str | os.PathLike, stem: str = "model", class_name: str = "Net",
                   title: str = "") -> list[Path]:
    """Write stem.py (the generated code), stem.pt (state_dict) and stem.safetensors side by side.

    `torch.load(stem.pt, weights_only=True)` loads straight into `stem.<class_name>()`."""
    from safetensors.torch import save_file

    from ..codegen import generate
    from ..fileio import atomic_write_text

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    gen = generate(graph, class_name=class_name, title=title)
    state = plain_state_dict(model)
    py = directory / f"{stem}.py"
    atomic_write_text(py, gen.code)
    pt = atomic_torch_save(state, directory / f"{stem}.pt")
    st = directory / f"{stem}.safetensors"
    # safetensors refuses tensors that share memory; state_dict copies above never do.
    save_file(state, str(st), metadata={"format": "pt", "class": gen.class_name, "generator": "cnnbuilder"})
    return [py, pt, st]
