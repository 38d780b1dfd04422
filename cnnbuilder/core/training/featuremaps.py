"""What a block outputs for one sample: captured with a hook on the module the generated code
made for it (`Generated.attr_of`), as a float32 numpy array C×H×W, and tiled into one image.

Input, Add, Mul, Concat, Split and Chunk have no module. The Input's output is the sample itself;
the others are caught as the input of a block that consumes it (a forward pre-hook; for a Split,
one that reads its first part), or as the model's output.
"""

from __future__ import annotations

import math

import numpy as np

MAX_CHANNELS = 256  # a 512-channel block would make a 100-megapixel mosaic for no insight


def no_maps() -> np.ndarray:
    """What a block with nothing to show sends: zero channels."""
    return np.zeros((0, 1, 1), np.float32)


def _kept(t):
    # A copy: an in-place block further on (ReLU(inplace=True)) would overwrite the tensor itself.
    return t.detach().clone() if hasattr(t, "detach") else t


def capture(model, graph, attr_of: dict[str, str], node_id: str, sample) -> tuple[np.ndarray, int, str]:
    """(maps C×H×W float32, channels before capping, message when there are none to show).

    `sample` is one normalised input, 1×C×H×W, on the model's device. The model is put in eval
    mode for the capture and restored; no gradient, no RNG use, so training is unaffected."""
    import torch

    if node_id not in graph:
        return no_maps(), 0, "that block is no longer in the model"
    node = graph.node(node_id)
    got: list = []
    handle = None
    if node.type == "Input":
        got.append(sample)
    elif node_id in attr_of and node.spec.module:
        module = model.get_submodule(attr_of[node_id])
        handle = module.register_forward_hook(lambda m, a, out: got.append(_kept(out)))
    else:
        consumer = next((d for d in graph.outputs(node_id) if d in attr_of and graph.node(d).spec.module
                         and graph.port(node_id, d) == 0), None)  # a Split shows its first part
        if consumer is not None:
            module = model.get_submodule(attr_of[consumer])
            handle = module.register_forward_pre_hook(lambda m, args: got.append(_kept(args[0])))
        elif not graph.outputs(node_id):
            handle = model.register_forward_hook(lambda m, a, out: got.append(out))
        else:
            return no_maps(), 0, f"{node.type} {node.label} has no output of its own to show: select a block after it"
    was_training = model.training
    try:
        if not got:
            model.eval()
            with torch.no_grad():
                model(sample)
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    if not got or not isinstance(got[0], torch.Tensor):
        return no_maps(), 0, f"{node.label} produced no tensor"
    out = got[0].detach()[0].float().contiguous().cpu().numpy()
    return as_maps(out)


def as_maps(out: np.ndarray) -> tuple[np.ndarray, int, str]:
    if out.ndim == 1:  # a vector: one 1×1 tile per feature, laid out as a square mosaic
        maps = out.reshape(-1, 1, 1)
    elif out.ndim == 2:  # C×L (1-D signals)
        maps = out.reshape(out.shape[0], 1, out.shape[1])
    else:  # C×H×W (anything deeper is folded into the channels)
        maps = out.reshape(-1, out.shape[-2], out.shape[-1])
    total = maps.shape[0]
    return np.ascontiguousarray(maps[:MAX_CHANNELS], dtype=np.float32), total, ""


def tile(maps: np.ndarray, per_channel: bool = True, pad: int = 1, cols: int | None = None,
         gap: float = 0.0) -> np.ndarray:
    """C×H×W -> one 2-D float32 mosaic in [0, 1] (NaN-free), channels row by row, `cols` tiles a
    row (default: about square; `columns_for` picks the count that fills a given view).

    Each channel is scaled to its own min..max so weak channels stay visible (per_channel);
    otherwise all share one scale. The gaps between tiles and the empty slots of the last row
    are `gap`: 0, the darkest level, by default; NaN lets a viewer draw them transparent."""
    maps = np.asarray(maps, dtype=np.float32)
    c, h, w = maps.shape
    if c == 0:
        return np.zeros((1, 1), np.float32)
    maps = np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)
    if per_channel:
        lo = maps.min(axis=(1, 2), keepdims=True)
        hi = maps.max(axis=(1, 2), keepdims=True)
    else:
        lo, hi = maps.min(), maps.max()
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    norm = (maps - lo) / span
    if h == 1 and w == 1:
        pad = 0  # a vector: a plain square of pixels
    if cols is None:
        cols = int(math.ceil(math.sqrt(c * h / max(w, 1)))) if h * w > 1 else int(math.ceil(math.sqrt(c)))
    cols = max(1, min(c, int(cols)))
    rows = int(math.ceil(c / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), gap, dtype=np.float32)
    for i in range(c):
        r, k = divmod(i, cols)
        y0, x0 = pad + r * (h + pad), pad + k * (w + pad)
        out[y0:y0 + h, x0:x0 + w] = norm[i]
    return out


def columns_for(c: int, h: int, w: int, view_w: float, view_h: float, pad: int = 1) -> int:
    """How many tiles a row makes C tiles of H×W cover the most of a view_w × view_h view (the
    mosaic is scaled to fit with its aspect kept): a wide view gets a wide mosaic, a tall one a
    tall mosaic, instead of a small square grid in an empty field."""
    if c <= 0 or view_w <= 0 or view_h <= 0:
        return 1
    if h == 1 and w == 1:
        pad = 0
    best, best_scale = 1, -1.0
    for cols in range(1, c + 1):
        rows = -(-c // cols)
        scale = min(view_w / (cols * (w + pad) + pad), view_h / (rows * (h + pad) + pad))
        if scale > best_scale * (1 + 1e-9):  # ties keep the fewer columns
            best, best_scale = cols, scale
    return best
