"""Looking inside a run: which test images it got wrong, what its blocks output while it trains,
and what the chosen augmentation does to training images.

Everything here takes and returns plain data (numpy arrays, dataclasses) so any thread or process
that holds the model and the data can serve it. The selections (`cell_indices`,
`confident_mistakes`) are numpy only, cheap enough for the GUI thread; the rest runs torch.

Activations: each block's output on a fixed probe batch, captured with forward hooks (the same
module-per-block mapping as the feature maps). "Dead" is counted after ReLU and ReLU6 only: a unit
(one element of the block's output, C×H×W) is dead on the batch when it is zero for every image of
it, so it passes no gradient back. LeakyReLU, ELU, GELU, SiLU and the like keep a gradient for
negative inputs, so a unit of theirs cannot die that way; they get a mean and std but no dead share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import TrainConfig

DEAD_TYPES = frozenset({"ReLU", "ReLU6"})  # blocks whose zero outputs pass no gradient back
DEAD_WARNING = 0.5  # a block with more than this share of dead units gets a warning
PROBE_IMAGES = 64  # images in the activation probe batch
PROBES_PER_EPOCH = 4  # activation probes per epoch (plus one before the first step)
PREVIEW_IMAGES = 16  # images in the augmentation preview
GALLERY_LIMIT = 64  # images shown for one confusion cell or the confident mistakes


class InspectError(ValueError):
    """A request that cannot be answered; the message says why."""


# -- mistakes ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TestPredictions:
    """Per test image, in the test split's order: true class, predicted class, and the predicted
    class's probability. Small on purpose (a few bytes an image) so a run record can keep it."""

    true: np.ndarray  # int64 N
    pred: np.ndarray  # int64 N
    prob: np.ndarray  # float32 N, 0..1

    def __post_init__(self):
        n = len(self.true)
        if len(self.pred) != n or len(self.prob) != n:
            raise InspectError(f"test predictions disagree in length: {n} labels, {len(self.pred)} predictions, "
                               f"{len(self.prob)} probabilities")


def predictions(true, pred, prob) -> TestPredictions:
    """Checked, typed arrays (also for predictions read back from a run record)."""
    t = np.asarray(true, dtype=np.int64).reshape(-1)
    p = np.asarray(pred, dtype=np.int64).reshape(-1)
    q = np.asarray(prob, dtype=np.float32).reshape(-1)
    return TestPredictions(t, p, q)


def cell_indices(tp: TestPredictions, true_class: int, pred_class: int, limit: int = GALLERY_LIMIT,
                 num_classes: int | None = None) -> np.ndarray:
    """Test images of `true_class` predicted as `pred_class`, most confident first (at most `limit`)."""
    for name, c in (("true class", true_class), ("predicted class", pred_class)):
        if not isinstance(c, (int, np.integer)) or c < 0 or (num_classes is not None and c >= num_classes):
            raise InspectError(f"{name} {c!r} is not one of the run's classes")
    idx = np.flatnonzero((tp.true == true_class) & (tp.pred == pred_class))
    return idx[np.argsort(-tp.prob[idx], kind="stable")][: max(0, int(limit))]


def confident_mistakes(tp: TestPredictions, limit: int = GALLERY_LIMIT) -> np.ndarray:
    """Wrong predictions, the most confident first (at most `limit`)."""
    idx = np.flatnonzero(tp.true != tp.pred)
    return idx[np.argsort(-tp.prob[idx], kind="stable")][: max(0, int(limit))]


def test_images(bundle, indices) -> np.ndarray:
    """The test images at `indices` as uint8 N×C×H×W (as loaded: resized, not normalised)."""
    import torch

    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    n = len(bundle.test)
    if len(idx) and (idx.min() < 0 or idx.max() >= n):
        raise InspectError(f"test image {int(idx.max() if idx.max() >= n else idx.min())} does not exist: "
                           f"the test set has {n} images (was the data changed since the run?)")
    c, h, w = bundle.shape
    if not len(idx):
        return np.zeros((0, c, h, w), np.uint8)
    if bundle.in_memory:
        x = bundle.test.x.index_select(0, torch.as_tensor(idx, device=bundle.test.x.device))
    else:
        x = torch.stack([bundle.test[int(i)][0] for i in idx])
    return x.cpu().numpy().astype(np.uint8, copy=False)


def test_labels(bundle, indices) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if bundle.in_memory:
        return bundle.test.y.cpu().numpy()[idx]
    return np.array([int(bundle.test[int(i)][1]) for i in idx], dtype=np.int64)


# -- activations -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockActivation:
    node_id: str
    mean: float
    std: float
    dead: float  # share of dead units, 0..1; NaN for blocks that are not ReLU-like


def probe_batch(bundle, n: int = PROBE_IMAGES):
    """The fixed probe images: the first n training images (uint8 N×C×H×W torch tensor)."""
    import torch

    n = min(n, len(bundle.train))
    if bundle.in_memory:
        return bundle.train.x[:n]
    return torch.stack([bundle.train[i][0] for i in range(n)])


def activation_stats(model, graph, attr_of: dict[str, str], batch) -> list[BlockActivation]:
    """Mean, std and (after ReLU/ReLU6) dead share of every block with a module of its own, for one
    forward pass of `batch` (a normalised float tensor on the model's device). The model is put
    in eval mode for the pass (BatchNorm statistics stay untouched) and restored after."""
    import torch

    stats: dict[str, tuple] = {}
    handles = []

    def hook(node_id, relu):
        def record(_m, _args, out):
            if not torch.is_tensor(out) or not out.is_floating_point() or out.numel() == 0:
                return
            o = out.detach().float()
            dead = float((o.flatten(1) > 0).any(0).logical_not().float().mean()) if relu and o.dim() > 1 \
                else math.nan
            stats[node_id] = (o.mean(), o.std() if o.numel() > 1 else torch.zeros(()), dead)
        return record

    for node in graph:
        path = attr_of.get(node.id)
        if path is None or not node.spec.module:
            continue
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        handles.append(module.register_forward_hook(hook(node.id, node.type in DEAD_TYPES)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = []
    for node in graph:
        if node.id in stats:
            m, s, d = stats[node.id]
            out.append(BlockActivation(node.id, float(m), float(s), d))
    return out


# -- augmentation preview ----------------------------------------------------------------------

def augment_preview(cfg: TrainConfig, bundle, seed: int = 0, n: int = PREVIEW_IMAGES) -> np.ndarray:
    """The first n training images after `cfg`'s augmentation, each with its own random draw (the
    kernels training uses, seeded by `seed`), as uint8 N×C×H×W; unaugmented when none is set."""
    import torch

    from .augment import BatchTransform

    cfg = cfg.check()
    x = probe_batch(bundle, n).cpu()
    if not cfg.augments:
        return x.numpy().astype(np.uint8, copy=False)
    t = BatchTransform(cfg, bundle.mean, bundle.std, bundle.shape[0], "cpu")
    g = torch.Generator()
    g.manual_seed(int(seed))
    out = t.augment(x, g)
    return (out.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


# -- requests, answered by whoever holds the data (the training worker) --------------------------

@dataclass(frozen=True)
class ImagesRequest:
    tag: int  # echoed back as the event's run_id, so a view can drop stale answers
    config: dict  # TrainConfig.to_dict() of the run whose test images these are
    indices: tuple[int, ...]
    labels: tuple[int, ...] = ()  # their true classes as the run saw them: checked against the data now


@dataclass(frozen=True)
class PreviewRequest:
    tag: int
    config: dict  # the training settings being edited
    seed: int = 0


def _why(exc: BaseException) -> str:
    from .events import first_line

    return first_line(exc) or type(exc).__name__


def serve_images(req: ImagesRequest, bundle=None):
    """(TestImages event, the data bundle used: keep it for the next request)."""
    from .events import TestImages

    idx = np.asarray(req.indices, dtype=np.int64).reshape(-1)
    try:
        from .data import data_for

        cfg = TrainConfig.from_dict(req.config, strict=True)
        bundle = data_for(cfg, bundle)
        images = test_images(bundle, idx)
        if req.labels and test_labels(bundle, idx).tolist() != list(req.labels):
            raise InspectError("the test images are not the ones this run was tested on (the data changed since)")
        return TestImages(req.tag, idx, images), bundle
    except Exception as exc:  # noqa: BLE001 - a message in the gallery, never a traceback
        message = f"cannot show the test images: {_why(exc)}"
        return TestImages(req.tag, idx, np.zeros((0, 1, 1, 1), np.uint8), message), bundle


def serve_preview(req: PreviewRequest, bundle=None):
    """(AugmentPreview event, the data bundle used)."""
    from .events import AugmentPreview

    try:
        from .data import data_for

        cfg = TrainConfig.from_dict(req.config, strict=True)
        bundle = data_for(cfg, bundle)
        return AugmentPreview(req.tag, augment_preview(cfg, bundle, req.seed)), bundle
    except Exception as exc:  # noqa: BLE001
        return AugmentPreview(req.tag, np.zeros((0, 1, 1, 1), np.uint8), f"no preview: {_why(exc)}"), bundle


class ActivationHistory:
    """The Activations events of one run, per block, for sparklines: `series(node_id)` gives
    (steps, mean, std, dead) arrays; `dying()` the blocks whose last dead share exceeds DEAD_WARNING."""

    def __init__(self) -> None:
        self.run_id: int | None = None
        self._rows: dict[str, list[tuple[int, float, float, float]]] = {}

    def add(self, ev) -> None:
        """An Activations event; one of a new run starts the history afresh."""
        if ev.run_id != self.run_id:
            self.run_id = ev.run_id
            self._rows = {}
        for i, nid in enumerate(ev.node_ids):
            rows = self._rows.setdefault(nid, [])
            if rows and rows[-1][0] == ev.step:
                rows.pop()  # the same step probed again (the last batch of an epoch)
            rows.append((int(ev.step), float(ev.mean[i]), float(ev.std[i]), float(ev.dead[i])))

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._rows

    def series(self, node_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rows = self._rows.get(node_id, [])
        a = np.array(rows, dtype=np.float64).reshape(-1, 4)
        return a[:, 0], a[:, 1], a[:, 2], a[:, 3]

    def last_dead(self, node_id: str) -> float:
        rows = self._rows.get(node_id)
        return rows[-1][3] if rows else math.nan

    def dying(self) -> list[tuple[str, float]]:
        """(node id, dead share) of the blocks with more than DEAD_WARNING of their units dead now."""
        return [(nid, rows[-1][3]) for nid, rows in self._rows.items()
                if rows and not math.isnan(rows[-1][3]) and rows[-1][3] > DEAD_WARNING]
