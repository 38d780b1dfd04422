"""What the GUI's "Look inside" tab asks for, answered as plain picklable data: a convolution's
kernels as tiles with its weight histogram (`filters_of`), and a prediction with a map of where the
model looks for one image (`look`).

`look(request, model, bundle)` is the one entry point a worker (thread or process) calls: the
request names the graph, the settings, which weights (the live model passed in, a run's, a file)
and what to compute; the result carries numpy arrays and strings only, or a one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..training.events import Event

FILTERS, PREDICT = "filters", "predict"
MAX_FILTERS = 64  # tiles shown at most; the caption says when there are more
PAIRS_UP_TO = 64  # input-output pairs shown one tile each when there are at most this many


class LookError(Exception):
    """A look request cannot be answered; one line for the user."""


@dataclass(frozen=True)
class FilterGrid:
    node_id: str
    label: str
    tiles: np.ndarray  # float32 N×kh×kw×3 (RGB, 0..1) or N×kh×kw (0..1, for a colour map)
    rgb: bool
    caption: str  # how the tiles were made from the weights
    hist_counts: np.ndarray  # int64, the block's weight histogram (all its kernels' values)
    hist_edges: np.ndarray  # float64, len(counts) + 1
    total: int  # filters (or pairs) the block has; tiles may show fewer


def filters_of(model, graph, attr_of: dict[str, str], node_id: str, bins: int = 40) -> FilterGrid:
    """The kernels of the Conv2d (or ConvTranspose2d) `node_id` as tiles.

    3 input channels (a first layer on colour images): one RGB tile per filter, each scaled to its
    own range. Few input-output pairs (≤ PAIRS_UP_TO): one tile per pair. Otherwise one tile per
    filter, the mean over its input channels. Values are scaled symmetrically around zero for the
    one-channel tiles (0.5 is a zero weight), so sign stays readable."""
    node = graph.node(node_id) if node_id in graph else None
    if node is None:
        raise LookError(f"no block {node_id!r} in the model")
    if node.type not in ("Conv2d", "ConvTranspose2d"):
        raise LookError(f"{node.label} ({node.type}) has no convolution kernels: select a Conv2d block")
    if node_id not in attr_of:
        raise LookError(f"{node.label}: no module in the model for this block")
    w = model.get_submodule(attr_of[node_id]).weight.detach().float().cpu().numpy()
    if node.type == "ConvTranspose2d":  # in×out/groups×kh×kw: filters along the second axis
        w = w.transpose(1, 0, 2, 3)
    out_c, in_c, kh, kw = w.shape
    counts, edges = np.histogram(w.ravel(), bins=bins) if w.size else (np.zeros(bins, np.int64),
                                                                      np.linspace(-1, 1, bins + 1))
    if in_c == 3:
        shown = w[:MAX_FILTERS].transpose(0, 2, 3, 1)
        lo = shown.min(axis=(1, 2, 3), keepdims=True)
        hi = shown.max(axis=(1, 2, 3), keepdims=True)
        tiles = (shown - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
        caption, total, rgb = (f"{out_c} filters of {kh}×{kw} over 3 input channels, drawn as RGB "
                               "(each scaled to its own range)"), out_c, True
    else:
        if out_c * in_c <= PAIRS_UP_TO:
            flat = w.reshape(out_c * in_c, kh, kw)
            caption = f"{out_c}×{in_c} kernels of {kh}×{kw}: one tile per (output, input) channel pair, row by output"
            total = out_c * in_c
        else:
            flat = w.mean(axis=1)
            caption = (f"{out_c} filters of {in_c}×{kh}×{kw}: each tile is a filter's mean over its {in_c} "
                       "input channels")
            total = out_c
        flat = flat[:MAX_FILTERS]
        top = float(np.abs(flat).max()) if flat.size else 0.0
        tiles = 0.5 + 0.5 * flat / top if top > 0 else np.full_like(flat, 0.5)
        caption += "; grey is zero, bright positive, dark negative"
        rgb = False
    if total > MAX_FILTERS:
        caption += f" (the first {MAX_FILTERS} of {total})"
    return FilterGrid(node_id, node.label, np.ascontiguousarray(tiles, np.float32), rgb, caption,
                      counts.astype(np.int64), edges.astype(np.float64), total)


def mosaic(grid: FilterGrid, cols: int | None = None, gap: int = 1) -> np.ndarray:
    """The tiles in rows (float32 H×W×3, NaN-free, 0..1), `gap` pixels of 1.0 (white) between them."""
    tiles = grid.tiles if grid.rgb else np.repeat(grid.tiles[..., None], 3, axis=-1)
    n = tiles.shape[0]
    if n == 0:
        return np.ones((1, 1, 3), np.float32)
    kh, kw = tiles.shape[1:3]
    cols = max(1, min(n, cols or int(np.ceil(np.sqrt(n)))))
    rows = -(-n // cols)
    out = np.ones((rows * (kh + gap) - gap, cols * (kw + gap) - gap, 3), np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (kh + gap):r * (kh + gap) + kh, c * (kw + gap):c * (kw + gap) + kw] = tiles[i]
    return out


# -- requests --------------------------------------------------------------------------------------

@dataclass
class LookRequest:
    tag: int  # echoed back as the result's run_id so the panel can drop stale answers
    kind: str  # FILTERS or PREDICT
    graph: dict[str, Any]  # graph_to_dict snapshot
    config: dict[str, Any]  # TrainConfig.to_dict()
    node_id: str | None = None  # FILTERS: the conv block
    image: str | None = None  # PREDICT: an image file, or
    test_index: int | None = None  # a test sample of the dataset
    weights: tuple[str, ...] | None = None  # ("run", runs folder, run id) or ("file", path); None: live/untrained
    method: str | None = "gradcam"  # a key of explain.METHODS, or None: only predict
    block: str | None = None  # Grad-CAM's block id (None: default_cam_block)
    target: int | None = None  # the class to explain (None: the predicted one)


@dataclass(frozen=True)
class LookResult(Event):
    kind: str = PREDICT
    message: str = ""  # set when nothing could be computed: the whole answer
    source: str = ""  # which weights were used
    filters: FilterGrid | None = None
    display: np.ndarray | None = None  # uint8 H×W×3: the input as the model sees it
    image_name: str = ""
    notes: tuple[str, ...] = ()
    top: tuple[tuple[str, float], ...] = ()  # (class name, probability), best first
    class_names: tuple[str, ...] = ()
    method: str = ""
    heat: np.ndarray | None = None  # float32 H×W, at the display's size
    target: int = -1
    block: str = ""  # Grad-CAM's block id
    blocks: tuple[tuple[str, str], ...] = ()  # (id, label) Grad-CAM can use
    map_note: str = ""
    extra: dict = field(default_factory=dict)


def look(req: LookRequest, model=None, bundle=None, source: str = "") -> LookResult:
    """Answer `req` with `model` (a live model built from the same graph) when given and the request
    names no other weights; else the request's weights, else fresh weights. Never raises for bad
    input: the result's message says what is wrong."""
    from ..training.events import first_line

    try:
        return _look(req, model, bundle, source)
    except Exception as exc:  # noqa: BLE001 - one line in the panel, never a traceback
        return LookResult(req.tag, req.kind, message=first_line(exc)[:300] or type(exc).__name__)


def _load(req: LookRequest, model, source: str):
    from ..project import graph_from_dict
    from .predict import ModelError, build, wrap

    graph = graph_from_dict(req.graph, "graph")
    from ..shapes import analyze

    if not analyze(graph).ok:
        raise LookError("fix the model's problems first")
    w = req.weights
    if w and w[0] == "file":
        return build(graph, weights=w[1])
    if w and w[0] == "run":
        from .. import runs

        store = runs.RunStore(w[1])
        record = runs.read_run(store.run_dir(w[2]))
        if runs.model_changed(record, graph):
            raise ModelError(f"the model was edited after {record.name}: its weights do not fit; train again or "
                             "choose a weights file")
        return wrap(runs.build_model(store, record).cpu(), graph, f"weights of {record.name}")
    if model is not None:
        return wrap(model, graph, source or "the live model")
    loaded = build(graph)
    loaded.source = "untrained weights: train to see what the model learns"
    return loaded


def _look(req: LookRequest, model, bundle, source: str) -> LookResult:
    loaded = _load(req, model, source)
    if req.kind == FILTERS:
        if req.node_id is None:
            raise LookError("select a Conv2d block on the canvas")
        grid = filters_of(loaded.model, loaded.graph, loaded.attr_of, req.node_id)
        return LookResult(req.tag, FILTERS, source=loaded.source, filters=grid)
    if req.kind != PREDICT:
        raise LookError(f"unknown request {req.kind!r}")
    return _predict(req, loaded, bundle)


def _predict(req: LookRequest, loaded, bundle) -> LookResult:
    from ..training.config import TrainConfig
    from .explain import cam_blocks, default_cam_block, explain_image
    from .images import prepare_array, preprocessing_for

    cfg = TrainConfig.from_dict(req.config)
    shape = tuple(loaded.analysis.input_shape or ())
    if bundle is not None and getattr(bundle, "key", ()) and bundle.key != cfg.data_key():
        bundle = None  # loaded for other data settings
    if bundle is None and (req.test_index is not None or cfg.normalize):
        from ..training.data import load_data

        bundle = load_data(cfg)
    if bundle is not None and tuple(bundle.shape) != shape:
        raise LookError(f"the model takes {'×'.join(map(str, shape))} images but the dataset's are "
                        f"{'×'.join(map(str, bundle.shape))}")
    prep = preprocessing_for(cfg, shape, bundle=bundle)
    if req.test_index is not None:
        n = len(bundle.test)
        i = int(req.test_index)
        if not 0 <= i < n:
            raise LookError(f"test sample {i} does not exist: the test set has {n} images (0–{n - 1})")
        if bundle.in_memory:
            x, y = bundle.test.x[i], int(bundle.test.y[i])
        else:
            x, y = bundle.test[i]
            y = int(y)
        image = prepare_array(np.asarray(x.cpu() if hasattr(x, "cpu") else x), prep)
        from .predict import class_name

        name = f"test sample {i} (label: {class_name(prep.class_names, y)})"
    elif req.image:
        image, name = req.image, req.image
    else:
        raise LookError("open an image, drop one here, or pick a test sample")
    blocks = tuple((b.node_id, b.label) for b in cam_blocks(loaded.graph, loaded.analysis))
    block = req.block if req.block and any(b[0] == req.block for b in blocks) else None
    if req.method == "gradcam" and block is None:
        block = default_cam_block(loaded.graph, loaded.analysis)
    ex = explain_image(loaded, prep, image, req.method if (req.method != "gradcam" or block) else None,
                       block=block, target=req.target)
    a = ex.attribution
    import os

    return LookResult(req.tag, PREDICT, source=loaded.source, display=ex.image.display,
                      image_name=os.path.basename(name) if req.image else name, notes=tuple(ex.image.notes),
                      top=tuple((r.name, r.probability) for r in ex.prediction.top),
                      class_names=tuple(ex.class_names) or tuple(f"class {k}" for k in
                                                                 range(len(ex.prediction.probabilities))),
                      method=a.method if a else "", heat=a.map if a else None, target=a.target if a else
                      ex.prediction.predicted, block=(a.node_id or "") if a else "", blocks=blocks,
                      map_note=a.note if a else ("no block with a C×H×W output for Grad-CAM"
                                                 if req.method == "gradcam" else ""),
                      extra={"test_size": len(bundle.test)} if bundle is not None else {})
