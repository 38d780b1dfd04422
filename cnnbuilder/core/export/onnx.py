"""ONNX export: the model built from the generated code, through torch.onnx's current (dynamo) exporter.

The batch dimension is dynamic, the input is named `input` and the output `output`, and the opset
is the exporter's default (`OnnxReport.opset` says which). No file is reported written before
onnxruntime has run it on a random batch of 3 and matched PyTorch within `tolerance` (max abs);
otherwise the export is refused with the difference and nothing is left at the destination.
Needs the optional packages onnx, onnxscript and onnxruntime: `pip install 'cnnbuilder[onnx]'`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL_ONNX = "pip install 'cnnbuilder[onnx]'"
PACKAGES = ("onnx", "onnxscript", "onnxruntime")
INPUT_NAME, OUTPUT_NAME = "input", "output"
TOLERANCE = 1e-4
VERIFY_BATCH = 3
# What to change when the exporter has no ONNX translation for a block's operator.
HINTS = {"adaptive_max_pool2d": "AdaptiveMaxPool2d exports when its output size divides its input size "
                                "(e.g. 1, or 7 for 28×28)"}


class OnnxExportError(Exception):
    """The model cannot be exported or verified; the message says why (one line a user can act on)."""


@dataclass(frozen=True)
class OnnxReport:
    path: Path
    opset: int
    max_abs_diff: float  # onnxruntime vs PyTorch on the verification batch
    seconds: float  # export + verification
    input_shape: tuple[int, ...]  # per sample; the batch dimension is dynamic
    output_shape: tuple[int, ...]
    weights: str  # where the weights came from

    def message(self) -> str:
        return (f"wrote {self.path} (ONNX opset {self.opset}, input '{INPUT_NAME}' N×"
                f"{'×'.join(map(str, self.input_shape))}, output '{OUTPUT_NAME}'; {self.weights}); verified with "
                f"onnxruntime: max difference {self.max_abs_diff:.1e} on a batch of {VERIFY_BATCH}")


def onnx_missing() -> str | None:
    """None when ONNX export can run, else a message naming the missing packages and the install command."""
    missing = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"ONNX export needs {', '.join(missing)}: {INSTALL_ONNX}"


def load_weights(model, path: str | os.PathLike) -> str:
    """Load a state_dict (.pt/.pth), .safetensors or cnnbuilder checkpoint into `model`; returns a
    description. Read with weights_only=True: loading never runs code from the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise OnnxExportError(f"{path}: no such weights file")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - on garbage bytes the weights-only unpickler raises many types
        # (UnpicklingError, BadZipFile, EOFError; a text file: KeyError)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, (KeyError, IndexError, TypeError, AttributeError)):  # "101" alone says nothing
            first = f"{type(exc).__name__}: {first}"
        raise OnnxExportError(f"{path}: not a weights file, or damaged ({first[:200]})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):  # a cnnbuilder checkpoint
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OnnxExportError(f"{path}: expected a state_dict of tensors (model.pt, model.safetensors or a "
                              "checkpoint)")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        raise OnnxExportError(f"{path}: the weights belong to a different model (its layers or sizes differ): "
                              + (lines[1].strip() if len(lines) > 1 else lines[0])[:300]) from None
    return f"weights from {path.name}"


def export_onnx(graph, path: str | os.PathLike, *, weights: str | os.PathLike | None = None,
                state_dict: dict | None = None, title: str = "", tolerance: float = TOLERANCE,
                seed: int = 0) -> OnnxReport:
    """Export `graph`'s model to `path` and verify it; raises OnnxExportError with the reason.

    Weights: from the file `weights`, else `state_dict` (e.g. the last run's), else freshly
    initialised with `seed` (an untrained model, still a valid ONNX file)."""
    import numpy as np
    import torch

    from ..codegen import CodegenError, generate, instantiate
    from ..shapes import analyze

    missing = onnx_missing()
    if missing:
        raise OnnxExportError(missing)
    start = time.perf_counter()
    analysis = analyze(graph)
    try:
        gen = generate(graph, title=title, analysis=analysis)
    except CodegenError as exc:
        raise OnnxExportError(f"the model has problems; fix them before exporting ({exc})") from None
    torch.manual_seed(seed)
    model = instantiate(gen)
    source = f"untrained weights (seed {seed})"
    if weights is not None:
        source = load_weights(model, weights)
    elif state_dict is not None:
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise OnnxExportError(f"the trained weights do not fit this model: {str(exc).splitlines()[0][:300]}") \
                from None
        source = "trained weights"
    model = model.cpu().eval()
    in_shape = tuple(int(d) for d in analysis.input_shape)
    out_shape = tuple(int(d) for d in analysis.output_shape)

    path = Path(path)
    if path.is_dir():
        raise OnnxExportError(f"{path} is a folder: give a file name such as model.onnx")
    if not path.parent.is_dir():
        raise OnnxExportError(f"{path.parent}: no such folder")
    gen_cpu = torch.Generator().manual_seed(seed)
    example = torch.randn(2, *in_shape, generator=gen_cpu)  # 2, not 1: a batch of 1 would be specialised
    batch = torch.export.Dim("batch", min=1)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.onnx", dir=path.parent)
    except OSError as exc:
        raise OnnxExportError(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        program = _export(model, example, batch, graph)
        try:
            program.save(tmp)
        except OSError as exc:
            raise OnnxExportError(f"cannot write {path}: {exc.strerror or exc}") from None
        opset = _opset(program)
        x = torch.randn(VERIFY_BATCH, *in_shape, generator=gen_cpu)
        with torch.no_grad():
            expected = model(x).numpy()
        got = _run_onnxruntime(tmp, x.numpy())
        if got.shape != expected.shape:
            raise OnnxExportError(f"verification failed: onnxruntime gave shape {tuple(got.shape)}, PyTorch "
                                  f"{tuple(expected.shape)}; the export was refused")
        diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)))) if got.size else 0.0
        if not diff <= tolerance:  # also refuses NaN
            raise OnnxExportError(f"verification failed: onnxruntime and PyTorch differ by {diff:.3g} (max abs) on a "
                                  f"random batch of {VERIFY_BATCH}, more than {tolerance:g}; the export was refused")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's private mode is not what a user expects of an export
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return OnnxReport(path, opset, diff, time.perf_counter() - start, in_shape, out_shape, source)


def _export(model, example, batch, graph):
    import torch

    # The exporter narrates every stage on stdout and warns about internals; a user needs neither.
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (example,), None, dynamo=True, input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), verbose=False,
                                        optimize=True)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; all mean "cannot export"
        raise OnnxExportError(_reason(exc, graph)) from None
    if program is None:
        raise OnnxExportError("the ONNX exporter produced no model")
    return program


def _reason(exc: BaseException, graph) -> str:
    """One line: the operator the exporter could not translate and the blocks that use it, else the
    exporter's own first line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    op = re.search(r"op='aten\.(\w+)'", text) or re.search(r"aten[.:]+(\w+)", text)
    if op:
        name = op.group(1)
        key = name.replace("_", "").lower()
        nodes = [n for n in graph if n.type.lower() == key]
        where = f", used by the {nodes[0].type} block {', '.join(repr(n.label) for n in nodes[:3])}" if nodes else ""
        hint = f" ({HINTS[name]})" if name in HINTS else ""
        return (f"the ONNX exporter has no translation for the operator aten.{name}{where}: change or replace "
                f"that block to export{hint}")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "the ONNX exporter cannot export this model: " + (lines[0] if lines else type(exc).__name__)[:300]


def _opset(program) -> int:
    for imp in program.model_proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    raise OnnxExportError("the exported model declares no ONNX opset")


def _run_onnxruntime(path: str, x):
    import onnxruntime as ort

    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OnnxExportError(f"verification failed: onnxruntime cannot run the exported model ({first[:300]}); "
                              "the export was refused") from None
