"""Where the model looks: Grad-CAM at a block, vanilla-gradient saliency and SmoothGrad, with torch
hooks only, and an overlay of the map on the image.

Grad-CAM (Selvaraju et al. 2017): at a block with a C×H×W output A, the class score's gradient is
averaged over each channel's positions to weigh that channel, and ReLU(Σ_c w_c·A_c) is the map at
the block's resolution, upsampled bilinearly to the image. Saliency (Simonyan et al. 2014) is
|∂score/∂x| with the largest value over the colour channels; SmoothGrad (Smilkov et al. 2017)
averages it over copies of the image with Gaussian noise. The score is the model's output for the
class (a logit, or a probability where the model ends in Softmax). Tests check every map against
captum's LayerGradCam, LayerAttribution.interpolate, Saliency and NoiseTunnel.

Blocks are found through `Generated.attr_of` like the feature maps: a block with a module is hooked
on its output; Add and Concat, which have none, as the input of a module that reads them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np

from .images import PreparedImage, Preprocessing, prepare_image
from .predict import LoadedModel, ModelError, Prediction, check_classifier, class_name, predict

METHODS = {"gradcam": "Grad-CAM", "saliency": "Saliency (gradient)", "smoothgrad": "SmoothGrad"}
CONV_TYPES = ("Conv2d", "ConvTranspose2d")


class ExplainError(Exception):
    """A map cannot be made (no such block, a class out of range); one line for the user."""


@dataclass(frozen=True)
class CamBlock:
    node_id: str
    label: str
    type: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Attribution:
    method: str  # a key of METHODS
    map: np.ndarray  # float32 H×W at the image's (model input's) size, ≥ 0, not rescaled
    target: int  # the class explained
    score: float  # the model's output for that class
    node_id: str | None = None  # Grad-CAM's block
    layer_map: np.ndarray | None = None  # Grad-CAM at the block's own resolution (float32 h×w)
    note: str = ""


# -- blocks -----------------------------------------------------------------------------------

def cam_blocks(graph, analysis=None) -> list[CamBlock]:
    """Blocks Grad-CAM can look at: a C×H×W output after the Input, reachable by a hook."""
    from ..shapes import analyze

    a = analysis or analyze(graph)
    out = []
    for nid in a.order:
        info, node = a.nodes[nid], graph.node(nid)
        if node.type == "Input" or info.shape is None or len(info.shape) != 3:
            continue
        if not node.spec.module and not _module_consumer(graph, nid):
            continue
        out.append(CamBlock(nid, node.label, node.type, tuple(info.shape)))
    return out


def default_cam_block(graph, analysis=None) -> str | None:
    """Grad-CAM's usual choice, the last convolution: the convolution no other convolution follows.
    Where several are last together (a residual block's two paths, an inception block's branches),
    the block where they meet (the Add, the Concat), so that the map sees all of them. Without
    convolutions, the last block with a feature map."""
    blocks = cam_blocks(graph, analysis)
    if not blocks:
        return None
    convs = [b.node_id for b in blocks if b.type in CONV_TYPES]
    if not convs:
        return blocks[-1].node_id
    finals = [c for c in convs if not any(o != c and graph.reaches(c, o) for o in convs)]
    if len(finals) > 1:
        meet = next((b.node_id for b in blocks if b.node_id not in finals
                     and all(graph.reaches(f, b.node_id) for f in finals)), None)
        if meet is not None:
            return meet
    return finals[-1]


def find_cam_block(graph, name: str, analysis=None) -> str:
    """A block by name or id that Grad-CAM can use; ExplainError says which ones it could be."""
    from ..shapes import analyze

    a = analysis or analyze(graph)
    blocks = cam_blocks(graph, a)
    node = graph.find(name)
    if node is None:
        raise ExplainError(f"no block named {name!r}; Grad-CAM can look at: {_names(blocks)}")
    if any(b.node_id == node.id for b in blocks):
        return node.id
    shape = a.nodes[node.id].shape
    if node.type == "Input":
        why = "it is the model's input"
    elif shape is None:
        why = "it has a problem"
    elif len(shape) != 3:
        why = f"its output is {'×'.join(map(str, shape))}, not a C×H×W feature map"
    else:
        why = f"{node.type} has no module to hook; choose the block after it"
    raise ExplainError(f"Grad-CAM cannot look at {node.label} ({node.type}): {why}. Choose one of: {_names(blocks)}")


def _names(blocks: list[CamBlock]) -> str:
    if not blocks:
        return "none (the model has no block with a C×H×W output)"
    names = [b.label for b in blocks]
    return ", ".join(names[:12]) + (f", … ({len(names) - 12} more)" if len(names) > 12 else "")


def _module_consumer(graph, nid: str) -> str | None:
    return next((d for d in graph.outputs(nid) if graph.node(d).spec.module), None)


def _hook(model, graph, attr_of: dict[str, str], node_id: str, got: list):
    """Register a hook that appends the block's output tensor to `got`; returns the handle."""
    node = graph.node(node_id)
    if node.spec.module and node_id in attr_of:
        module = model.get_submodule(attr_of[node_id])
        return module.register_forward_hook(lambda m, args, out: got.append(out))
    consumer = _module_consumer(graph, node_id)
    if consumer is None or consumer not in attr_of:
        raise ExplainError(f"{node.type} {node.label} has no output of its own to hook: choose a block after it")
    module = model.get_submodule(attr_of[consumer])
    return module.register_forward_pre_hook(lambda m, args: got.append(args[0]))


@contextlib.contextmanager
def _evaluating(model):
    """Eval mode with every in-place module made out of place: ReLU(inplace=True) would overwrite
    the very activation whose gradient Grad-CAM needs. Both are restored afterwards."""
    was = model.training
    flipped = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for m in flipped:
        m.inplace = False
    model.eval()
    try:
        yield
    finally:
        for m in flipped:
            m.inplace = True
        model.train(was)


def _input(model, x):
    import torch

    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.detach().to(device, dtype)


def _target(out, target: int | None) -> int:
    check_classifier(out)
    k = out.shape[1]
    if target is None:
        return int(out[0].argmax())
    if not 0 <= target < k:
        raise ExplainError(f"class {target} is out of range: the model has {k} classes (0–{k - 1})")
    return int(target)


# -- maps -----------------------------------------------------------------------------------------

def grad_cam(model, graph, attr_of: dict[str, str], x, node_id: str | None = None, target: int | None = None,
             analysis=None) -> Attribution:
    """Grad-CAM of one input (1×C×H×W) at `node_id` (default: the last convolution)."""
    import torch
    import torch.nn.functional as F

    if node_id is None:
        node_id = default_cam_block(graph, analysis)
        if node_id is None:
            raise ExplainError("the model has no block with a C×H×W output for Grad-CAM")
    elif not any(b.node_id == node_id for b in cam_blocks(graph, analysis)):
        raise ExplainError(f"Grad-CAM cannot look at {graph.node(node_id).label}: choose a block with a C×H×W output")
    t = _input(model, x)
    got: list = []
    with _evaluating(model), torch.enable_grad():
        handle = _hook(model, graph, attr_of, node_id, got)
        try:
            out = model(t.requires_grad_(True))
        finally:
            handle.remove()
        cls = _target(out, target)
        act = got[0]
        (grad,) = torch.autograd.grad(out[0, cls], act)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act.detach()).sum(dim=1, keepdim=True))
    full = F.interpolate(cam, size=tuple(t.shape[-2:]), mode="bilinear", align_corners=False)
    note = "" if float(cam.max()) > 0 else "the map is zero everywhere: nothing at this block speaks for the class"
    return Attribution("gradcam", _np(full[0, 0]), cls, float(out[0, cls].detach()), node_id, _np(cam[0, 0]), note)


def saliency(model, x, target: int | None = None) -> Attribution:
    """|∂score/∂x|, the largest over the channels: which pixels would change the score most."""
    import torch

    t = _input(model, x)
    with _evaluating(model), torch.enable_grad():
        t = t.requires_grad_(True)
        out = model(t)
        cls = _target(out, target)
        (grad,) = torch.autograd.grad(out[0, cls], t)
    return Attribution("saliency", _np(grad.abs().amax(dim=1)[0]), cls, float(out[0, cls].detach()))


def smooth_grad(model, x, target: int | None = None, samples: int = 25, noise: float = 0.15, seed: int = 0,
                batch: int = 16) -> Attribution:
    """Saliency averaged over `samples` noisy copies of the input (Gaussian noise with a standard
    deviation of `noise` times the input's value range), which calms the speckle of plain gradients."""
    import torch

    if samples < 1:
        raise ExplainError("SmoothGrad needs at least one sample")
    t = _input(model, x)
    sigma = float(noise) * float(t.max() - t.min())
    g = torch.Generator(device=t.device).manual_seed(int(seed))
    # One draw for all samples, in the order captum's NoiseTunnel draws them.
    eps = torch.normal(0.0, torch.full((samples, *t.shape[1:]), sigma, dtype=t.dtype, device=t.device),
                       generator=g)
    noisy = t.repeat_interleave(samples, dim=0) + eps
    total = torch.zeros_like(t[0])
    with _evaluating(model), torch.enable_grad():
        out0 = model(t)
        cls = _target(out0, target)
        for start in range(0, samples, max(1, batch)):
            chunk = noisy[start:start + batch].detach().requires_grad_(True)
            out = model(chunk)
            (grad,) = torch.autograd.grad(out[:, cls].sum(), chunk)
            total += grad.abs().sum(dim=0)
    mean = total / samples
    return Attribution("smoothgrad", _np(mean.amax(dim=0)), cls, float(out0[0, cls].detach()),
                       note=f"{samples} samples, noise {noise:g} of the value range")


def _np(t) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy(), dtype=np.float32)


# -- one call for the GUI's worker and the CLI ------------------------------------------------------

@dataclass(frozen=True)
class Explanation:
    image: PreparedImage
    prediction: Prediction
    attribution: Attribution | None
    class_names: tuple[str, ...] = ()

    @property
    def target_name(self) -> str:
        return class_name(self.class_names, self.attribution.target) if self.attribution else ""


def explain_image(loaded: LoadedModel, prep: Preprocessing, image, method: str | None = "gradcam",
                  block: str | None = None, target: int | None = None, top: int = 5, **options) -> Explanation:
    """Prepare `image` (a file path, or a PreparedImage), predict, and compute `method`'s map (None: only
    predict). `block` is a block's name or id for Grad-CAM; `options` go to smooth_grad."""
    img = image if isinstance(image, PreparedImage) else prepare_image(image, prep)
    if tuple(prep.shape) != tuple(loaded.analysis.input_shape or ()):
        raise ModelError(f"the model takes {'×'.join(map(str, loaded.analysis.input_shape or ()))} images, "
                         f"not {'×'.join(map(str, prep.shape))}")
    pred = predict(loaded.model, img.x, prep.class_names, top, loaded.output)
    attribution = None
    if method == "gradcam":
        node = find_cam_block(loaded.graph, block, loaded.analysis) if block else None
        attribution = grad_cam(loaded.model, loaded.graph, loaded.attr_of, img.x, node, target, loaded.analysis)
    elif method == "saliency":
        attribution = saliency(loaded.model, img.x, target)
    elif method == "smoothgrad":
        attribution = smooth_grad(loaded.model, img.x, target, **options)
    elif method is not None:
        raise ExplainError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    return Explanation(img, pred, attribution, tuple(prep.class_names))


# -- pictures -------------------------------------------------------------------------------------

def colorize(heat: np.ndarray) -> np.ndarray:
    """A map (any range) as a uint8 H×W×3 'jet' picture, scaled so its largest value is red."""
    h = np.nan_to_num(np.asarray(heat, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    h = h - min(float(h.min()), 0.0)
    top = float(h.max())
    t = h / top if top > 0 else np.zeros_like(h)
    rgb = np.stack([np.clip(1.5 - np.abs(4 * t - k), 0, 1) for k in (3, 2, 1)], axis=-1)
    return np.rint(rgb * 255).astype(np.uint8)


def overlay(display: np.ndarray, heat: np.ndarray, opacity: float = 0.5, min_side: int = 224) -> np.ndarray:
    """The heat map blended onto the image (uint8 H×W×3) with `opacity` (0: image only, 1: map only),
    enlarged by a whole factor (nearest neighbour, so pixels stay aligned) to at least `min_side`."""
    img = np.asarray(display, np.uint8)
    if img.shape[:2] != np.asarray(heat).shape:
        raise ExplainError(f"the map ({'×'.join(map(str, np.asarray(heat).shape))}) and the image "
                           f"({'×'.join(map(str, img.shape[:2]))}) differ in size")
    a = float(np.clip(opacity, 0.0, 1.0))
    out = np.rint((1 - a) * img.astype(np.float32) + a * colorize(heat).astype(np.float32)).astype(np.uint8)
    k = max(1, -(-int(min_side) // max(1, min(out.shape[:2]))))
    if k > 1:
        out = out.repeat(k, axis=0).repeat(k, axis=1)
    return np.ascontiguousarray(out)


def save_png(rgb: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 H×W×3 picture as PNG (atomically); ExplainError naming the file when it cannot."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8), "RGB").save(buf, "PNG")
    _write(path, buf.getvalue(), "picture")


def save_npy(array: np.ndarray, path: str | os.PathLike) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, np.float32))
    _write(path, buf.getvalue(), "map")


def _write(path, data: bytes, what: str) -> None:
    from ..training.checkpoint import SaveError, atomic_write_checked

    try:
        atomic_write_checked(path, lambda f: f.write(data), what)
    except SaveError as exc:
        raise ExplainError(str(exc)) from None
