"""A trained model from the project's graph and a weights file, and its top-k predictions for one
prepared image.

The model is built the way the trainer builds it: from the generated code (`codegen.generate` +
`instantiate`, the single source of truth), then the weights are loaded from a state_dict (.pt,
.pth), a .safetensors file or a cnnbuilder checkpoint (`export.onnx.load_weights`, read with
weights_only=True: loading never runs code from the file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

LOGITS, PROBS, LOG_PROBS = "logits", "probabilities", "log-probabilities"


class ModelError(Exception):
    """The model cannot be built, its weights do not load, or it cannot classify; one line for the user.
    `unreadable`: the weights file is missing, damaged or not weights at all (rather than another model's)."""

    def __init__(self, message: str, unreadable: bool = False):
        super().__init__(message)
        self.unreadable = unreadable


@dataclass
class LoadedModel:
    model: Any  # torch.nn.Module in eval mode, on the CPU
    graph: Any
    analysis: Any
    attr_of: dict[str, str]  # node id -> the module's path in the model (Generated.attr_of)
    output: str  # LOGITS, PROBS or LOG_PROBS: what the model's last block gives
    source: str  # where the weights came from, for messages
    config: dict | None = None  # the training settings stored in a checkpoint, when the weights came from one


def output_kind(graph, analysis) -> str:
    """What the model's output means: Softmax and LogSoftmax at the end give (log-)probabilities."""
    if analysis.output_id is None:
        return LOGITS
    node = graph.node(analysis.output_id)
    if node.type in ("Softmax", "LogSoftmax") and analysis.output_shape is not None:
        dim = analysis.nodes[analysis.output_id].resolved.get("dim")
        if dim in (1, -1) and len(analysis.output_shape) == 1:
            return PROBS if node.type == "Softmax" else LOG_PROBS
    return LOGITS


def build(graph, state_dict: dict | None = None, weights: str | os.PathLike | None = None,
          seed: int = 0) -> LoadedModel:
    """The graph's model with weights from `state_dict` (e.g. a live model's or a run's), else from the
    file `weights`, else freshly initialised with `seed`. ModelError when either does not fit."""
    import torch

    from ..codegen import CodegenError, generate, instantiate
    from ..shapes import analyze

    a = analyze(graph)
    try:
        gen = generate(graph, analysis=a)
        torch.manual_seed(seed)
        model = instantiate(gen)
    except CodegenError as exc:
        raise ModelError(f"the model has problems; fix them first ({_one_line(exc)})") from None
    source, config = f"untrained weights (seed {seed})", None
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise ModelError(f"the weights do not fit this model ({_one_line(exc)})") from None
        source = "the given weights"
    elif weights is not None:
        source, config = _load_file(model, weights)
    return LoadedModel(model.cpu().eval(), graph, a, dict(gen.attr_of), output_kind(graph, a), source, config)


def build_from_data(graph_data: dict, weights: str | os.PathLike | dict | None = None) -> LoadedModel:
    """`build` from plain data, as a worker process receives it: the graph as `project.graph_to_dict`
    writes it, and weights as a file path or a state_dict of numpy arrays (or tensors)."""
    import torch

    from ..project import ProjectError, graph_from_dict

    try:
        graph = graph_from_dict(graph_data, "graph")
    except ProjectError as exc:
        raise ModelError(str(exc)) from None
    if isinstance(weights, dict):
        state = {k: torch.as_tensor(v) for k, v in weights.items()}
        return build(graph, state_dict=state)
    return build(graph, weights=weights)


def wrap(model, graph, source: str = "the live model") -> LoadedModel:
    """A model already built from `graph`'s generated code (a training run's, a run record's) for the
    functions here; it is not copied, and they leave its mode and in-place settings as they were."""
    from ..codegen import generate
    from ..shapes import analyze

    a = analyze(graph)
    return LoadedModel(model, graph, a, dict(generate(graph, analysis=a).attr_of), output_kind(graph, a), source)


def _load_file(model, path) -> tuple[str, dict | None]:
    from ..export.onnx import OnnxExportError, load_weights

    try:
        source = load_weights(model, path)  # state_dict, safetensors or checkpoint; never runs code
    except OnnxExportError as exc:
        text = str(exc)
        if "Weights only load failed" in text:  # torch's long advice about weights_only, for a file that is no weights
            text = f"{path}: not a weights file (model.pt, model.safetensors or a checkpoint), or damaged"
        raise ModelError(text, unreadable="belong to a different model" not in text) from None
    return source, _checkpoint_config(path)


def _checkpoint_config(path) -> dict | None:
    """The training settings inside a cnnbuilder checkpoint (None for plain weights)."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - safetensors and anything load_weights took another way
        return None
    if isinstance(data, dict) and data.get("format") == "cnnbuilder-checkpoint" and isinstance(data.get("config"),
                                                                                                  dict):
        return data["config"]
    return None


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return " ".join(lines[:2])[:300] if lines else type(exc).__name__


@dataclass(frozen=True)
class Ranked:
    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray  # float32, one per class, summing to 1
    top: tuple[Ranked, ...]
    output: str  # how probabilities were obtained from the model's output (LOGITS: softmax of it)

    @property
    def predicted(self) -> int:
        return self.top[0].index


def class_name(names, i: int) -> str:
    return names[i] if 0 <= i < len(names) else f"class {i}"


def probabilities(out, output: str = LOGITS):
    """The model's output (N×K tensor) as probabilities."""
    import torch

    out = out.detach().double()
    if output == PROBS:
        return out
    if output == LOG_PROBS:
        return out.exp()
    return torch.softmax(out, dim=1)


def check_classifier(out) -> None:
    if out.dim() != 2:
        raise ModelError(f"predictions need a model that gives one score per class, but its output is "
                         f"{'×'.join(str(d) for d in out.shape[1:])} per image")


def predict(model, x, class_names=(), top: int = 5, output: str = LOGITS) -> Prediction:
    """Top-k classes of one input (1×C×H×W, numpy or torch, normalised as training did)."""
    import torch

    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(device, dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(t)
    finally:
        model.train(was_training)
    check_classifier(out)
    probs = probabilities(out, output)[0].cpu().numpy()
    order = np.argsort(-probs, kind="stable")[:max(1, int(top))]
    ranked = tuple(Ranked(int(i), class_name(class_names, int(i)), float(probs[i])) for i in order)
    return Prediction(probs.astype(np.float32), ranked, output)
