"""Weights kept per block, for fine-tuning: a file of tensors keyed by block id and the block
module's own state_dict key ("n12" -> {"weight": ..., "bias": ...}).

Keying by block id, not by the generated code's attribute path, keeps the file valid when a user
renames a block, groups or ungroups blocks (which changes every path) or edits the graph around
it; `apply` finds each block's module in a freshly built model through `Generated.attr_of`.
Loaded with torch.load(weights_only=True): a weights file never runs code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "cnnbuilder-weights"
VERSION = 1


class WeightsError(Exception):
    """A weights file that cannot be used; the message names the file and what is wrong."""


@dataclass
class Applied:
    """What `apply` did: tensors loaded, and why each block's tensors that were not loaded were skipped."""
    loaded: int = 0
    total: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"loaded {self.loaded} of {self.total} weight tensors"
        if self.skipped:
            text += f"; skipped {len(self.skipped)}: " + "; ".join(self.skipped[:5])
            if len(self.skipped) > 5:
                text += f"; and {len(self.skipped) - 5} more"
        return text


def save(path: str | os.PathLike, blocks: dict[str, dict[str, Any]]) -> None:
    """Write atomically (a crash mid-save leaves any old file whole)."""
    import torch

    from ..fileio import atomic_write

    data = {"format": FORMAT, "version": VERSION,
            "blocks": {nid: {k: t.detach().cpu().clone() for k, t in sd.items()} for nid, sd in blocks.items()}}
    atomic_write(Path(path), lambda f: torch.save(data, f))


def load(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    import torch

    from ..project import display_path

    where = display_path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise WeightsError(f"{where}: is a folder, not a weights file") from None
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise WeightsError(f"{where}: not a weights file that can be read safely "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WeightsError(f"{where}: not a cnnbuilder weights file (made by File ▸ Import with weights)")
    if data.get("version") != VERSION:
        raise WeightsError(f"{where}: weights file version {data.get('version')!r} is not one this cnnbuilder reads")
    blocks = data.get("blocks")
    if not isinstance(blocks, dict):
        raise WeightsError(f"{where}: field 'blocks' must map block ids to tensors")
    for nid, sd in blocks.items():
        if not isinstance(nid, str) or not isinstance(sd, dict) or \
                not all(isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in sd.items()):
            raise WeightsError(f"{where}: block {nid!r} does not hold named tensors")
    return blocks


def apply(model, graph, attr_of: dict[str, str], blocks: dict[str, dict[str, Any]]) -> Applied:
    """Copy each block's tensors into its module in `model`; a block that is gone, or a tensor whose
    shape no longer fits (a classifier changed to 10 classes), is skipped with the reason."""
    modules = {nid: (attr_of[nid], graph.node(nid).label, graph.node(nid).type) for nid in blocks
               if nid in graph and nid in attr_of and graph.node(nid).spec.module}
    return copy_blocks(model, modules, blocks)


def copy_blocks(model, modules: dict[str, tuple[str, str, str]], blocks: dict[str, dict[str, Any]]) -> Applied:
    """`apply` on a table of block id -> (module path in `model`, block label, block type). Needs only
    torch: an exported training script runs this very function (export/script.py copies it)."""
    import torch

    done = Applied()
    for nid, sd in blocks.items():
        done.total += len(sd)
        if nid not in modules:
            done.skipped.append(f"block {nid} is no longer in the model")
            continue
        path, label, kind = modules[nid]
        own = model.get_submodule(path).state_dict()
        for key, tensor in sd.items():
            if key not in own:
                done.skipped.append(f"{label}.{key} is not a tensor of its {kind}")
            elif own[key].shape != tensor.shape:
                done.skipped.append(f"{label}.{key} has shape {tuple(own[key].shape)}, the file {tuple(tensor.shape)}")
            else:
                with torch.no_grad():
                    own[key].copy_(tensor)
                done.loaded += 1
    return done
