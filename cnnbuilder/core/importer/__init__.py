"""Import a PyTorch module (a class in a .py file, or a torchvision model) as a project.

Importing a user's file runs their code, so everything that touches it (importing the file,
building the module, tracing it with torch.fx, mapping it onto blocks) happens in a child process
(multiprocessing "spawn", which also works in the frozen bundle) with a time limit. The child
answers in plain data only: a JSON file holding the graph in the project format, and a weights file
written with node_weights.save. The parent never unpickles anything: it reads the JSON through the
project loader's checks and the weights with torch.load(weights_only=True), so nothing the user's
code forges can run here. See child.py for how tracing works and mapping.py for the table.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..project import Project

DEFAULT_TORCHVISION_INPUT = (3, 224, 224)
MAX_ANSWER_BYTES = 64 * 1024 * 1024
MAX_INPUT = 4096  # per dimension: an example batch bigger than this is not an image but a typo
MEMORY_FRACTION = 0.75  # of the machine's memory the child may allocate: the editor keeps the rest


def memory_limit() -> int | None:
    """Bytes the child may allocate (RLIMIT_DATA), so a module that allocates without end fails with
    a message instead of taking the editor down with it; None where it cannot be known."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return max(2 << 30, int(total * MEMORY_FRACTION))


class ImportRefused(Exception):
    """The module cannot be imported; the message says why in the user's terms (their file:line)."""


@dataclass
class ImportResult:
    project: Project
    weights: Path | None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Request:
    source: str
    torchvision: bool
    path: str | None
    cls: str | None
    args: dict
    input_shape: tuple[int, ...] | None
    weights: bool
    state_dict: str | None

    def to_json(self) -> str:
        return json.dumps({"source": self.source, "torchvision": self.torchvision, "path": self.path,
                           "cls": self.cls, "args": self.args,
                           "input_shape": list(self.input_shape) if self.input_shape else None,
                           "weights": self.weights, "state_dict": self.state_dict, "memory_limit": memory_limit()})


def parse_input(text: str) -> tuple[int, ...]:
    """`3x224x224` (or 3×224×224, 3,224,224, 784) -> (3, 224, 224), or ImportRefused. The dialog's
    parser (import_options), so the command line and the dialog take the same texts."""
    from ..import_options import OptionError, parse_input_text

    try:
        dims = parse_input_text(text if isinstance(text, str) else "")
    except OptionError as exc:
        raise ImportRefused(f"--input {text!r}: {exc}") from None
    if dims is None:
        raise ImportRefused("--input: give the input shape, such as 3x224x224")
    return _check_shape(dims)


def _check_shape(shape: Any) -> tuple[int, ...]:
    """An input shape the Input block takes, each size at most MAX_INPUT (the import runs a batch of it)."""
    from ..blocks import REGISTRY, ParamError

    if isinstance(shape, str):
        return parse_input(shape)
    try:
        dims = tuple(REGISTRY["Input"].check_param("shape", list(shape) if isinstance(shape, (tuple, list)) else shape))
    except ParamError as exc:
        raise ImportRefused(f"--input {shape!r}: {exc.reason}") from None
    if any(d > MAX_INPUT for d in dims):
        raise ImportRefused(f"--input {_fmt(dims)}: each size can be at most {MAX_INPUT} for an import")
    return dims


def _request(source: str, args: dict | None, input_shape, weights: bool, state_dict) -> _Request:
    if not isinstance(source, str) or not source.strip():
        raise ImportRefused("name what to import: path/to/file.py:ClassName or torchvision:NAME")
    if args is None:
        args = {}
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise ImportRefused("--args must be a JSON object of argument names and values, e.g. '{\"num_classes\": 10}'")
    try:
        json.dumps(args)
    except (TypeError, ValueError):
        raise ImportRefused("--args must hold plain JSON values (numbers, text, lists, true/false/null)") from None
    shape = None if input_shape is None else _check_shape(input_shape)
    if state_dict is not None:
        state_dict = os.fspath(state_dict)
        if not os.path.isfile(state_dict):
            raise ImportRefused(f"{state_dict}: no such weights file")
        state_dict = os.path.abspath(state_dict)
    source = source.strip()
    if source.startswith("torchvision:"):
        name = source[len("torchvision:"):].strip()
        if not name:
            raise ImportRefused("torchvision: name a model, e.g. torchvision:resnet18")
        return _Request(name, True, None, None, args, shape or DEFAULT_TORCHVISION_INPUT, weights, state_dict)
    path, sep, cls = source.rpartition(":")
    if not sep or not path or not cls:
        raise ImportRefused(f"{source}: expected path/to/file.py:ClassName or torchvision:NAME")
    if not cls.isidentifier():
        raise ImportRefused(f"{source}: {cls!r} is not a class name")
    file = Path(path).expanduser()
    if not file.exists():
        raise ImportRefused(f"{path}: no such file")
    if file.is_dir():
        raise ImportRefused(f"{path}: is a folder, not a Python file")
    return _Request(source, False, str(file.resolve()), cls, args, shape, weights, state_dict)


def import_model(source: str, *, args: dict | None = None, input_shape: tuple[int, ...] | None = None,
                 weights_to: str | os.PathLike | None = None, timeout: float = 60.0,
                 state_dict: str | os.PathLike | None = None, cancel: threading.Event | None = None) -> ImportResult:
    """Import SOURCE (`path/to/file.py:ClassName` or `torchvision:NAME`) as a project.

    input_shape: one sample's shape, e.g. (3, 224, 224) (torchvision's default; otherwise required
    unless the module makes it evident). weights_to: write the module's weights there, per block,
    and have the project's training start from them (training["init_weights"]). state_dict: a
    state_dict file loaded into the module first (e.g. torchvision weights already on disk).
    cancel: set it (from another thread) to stop the import at once; the child process and what it
    started are killed, and ImportRefused says it was cancelled.
    Raises ImportRefused with the reason; nothing is half-imported.
    """
    req = _request(source, args, input_shape, weights_to is not None, state_dict)
    with tempfile.TemporaryDirectory(prefix="cnnbuilder-import-") as tmp:
        answer = _run_child(req, Path(tmp), timeout, cancel)
        return _finish(req, answer, Path(tmp), weights_to)


def import_in_process(source: str, *, args: dict | None = None, input_shape: tuple[int, ...] | None = None,
                      weights_to: str | os.PathLike | None = None,
                      state_dict: str | os.PathLike | None = None) -> ImportResult:
    """import_model without the child process: for trusted sources only (torchvision, the tests' own
    files), where starting a fresh interpreter per model would dominate the time."""
    from .child import build

    req = _request(source, args, input_shape, weights_to is not None, state_dict)
    with tempfile.TemporaryDirectory(prefix="cnnbuilder-import-") as tmp:
        answer = build(json.loads(req.to_json()), Path(tmp))
        return _finish(req, json.loads(json.dumps(answer)), Path(tmp), weights_to)


def _run_child(req: _Request, tmp: Path, timeout: float, cancel: threading.Event | None = None) -> Any:
    from . import child

    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=child.run, args=(req.to_json(), str(tmp)), name="cnnbuilder-import", daemon=True)
    # As for the training service: spawn would run the caller's main script again in the child.
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        proc.start()
    finally:
        if main is not None:
            sys.modules["__main__"] = main
    deadline = time.monotonic() + timeout
    result = tmp / child.RESULT
    try:
        while proc.is_alive() and time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                raise ImportRefused(f"{_label(req)}: the import was cancelled (its process was stopped)")
            proc.join(min(0.05, max(0.0, deadline - time.monotonic())))
            if result.exists():
                proc.join(2.0)  # it ends with os._exit right after writing
                break
        if proc.is_alive() and not result.exists():
            phase = _read_small(tmp / child.PHASE) or "building"
            raise ImportRefused(f"{_label(req)}: the module did not finish {phase} within {_secs(timeout)} s "
                                "(it was stopped)")
    finally:
        _kill(proc)
    if not result.exists():
        code = proc.exitcode
        how = (f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}")
        tail = _log_tail(tmp / child.LOG)
        raise ImportRefused(f"{_label(req)}: the import process {how} before answering (the module's code may call "
                            f"os._exit, crash or run out of memory){': ' + tail if tail else ''}")
    from ..project import read_limited

    raw = read_limited(result, MAX_ANSWER_BYTES, "the import's answer", "an answer", ImportRefused)
    try:
        return json.loads(raw)
    except ValueError:
        raise ImportRefused(f"{_label(req)}: the import process gave an answer that is not JSON") from None


def _kill(proc) -> None:
    if proc.pid is not None and proc.is_alive() and hasattr(os, "killpg"):
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own group (setsid): whatever it started goes too
        except (ProcessLookupError, PermissionError):
            pass
    if proc.is_alive():
        proc.kill()
    proc.join(5.0)


def _secs(t: float) -> str:
    return f"{t:g}"


def _label(req: _Request) -> str:
    return f"torchvision:{req.source}" if req.torchvision else Path(req.path or req.source).name


def _read_small(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            text = f.read(64).decode("utf-8", "replace")
    except OSError:
        return ""
    return text if text in ("building", "tracing") else ""


def _log_tail(path: Path) -> str:
    from ..graph import clean_text

    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 2000))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in clean_text(text.replace("\n", "\x00")).split(" ") if ln.strip()]
    tail = " ".join(lines)[-300:]
    return tail


def _finish(req: _Request, answer: Any, tmp: Path, weights_to) -> ImportResult:
    """The child's answer as a checked project: the graph read through the project loader, laid
    out, analysed and compared with the traced module; the weights re-read safely and written out."""
    from ..graph import clean_text
    from ..project import ProjectError, clean_project_name, graph_from_dict
    from ..shapes import analyze

    label = _label(req)
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise ImportRefused(f"{label}: the import process gave an answer that cannot be read")
    if not answer["ok"]:
        msg = answer.get("message")
        raise ImportRefused(clean_text(msg)[:2000] if isinstance(msg, str) and msg else f"{label}: refused")
    try:
        graph = graph_from_dict(answer.get("graph"), "the imported graph")
    except (ProjectError, TypeError, AttributeError) as exc:
        raise ImportRefused(f"{label}: the import produced a graph that does not load ({exc})") from None
    a = analyze(graph)
    if not a.ok:
        p = a.root_problems[0]
        raise ImportRefused(f"{label}: the imported graph has a problem: {p.message} (an importer bug: please report)")
    out = answer.get("output_shape")
    if not isinstance(out, list) or list(a.output_shape) != out[1:]:
        raise ImportRefused(f"{label}: the imported graph gives {_fmt(a.output_shape)} where the module gives "
                            f"{_fmt(out[1:] if isinstance(out, list) else ())} (an importer bug: please report)")
    expect = answer.get("expect") or {}
    if isinstance(expect, dict):
        for nid, params in expect.items():
            if nid in graph and isinstance(params, dict):
                spec = graph.node(nid).spec
                for k, v in params.items():
                    if k in spec.param_map and a.nodes[nid].resolved.get(k) != _normal(spec, k, v):
                        raise ImportRefused(f"{label}: block {graph.node(nid).label}: {k} comes out as "
                                            f"{a.nodes[nid].resolved.get(k)!r}, the module has {v!r} (an importer "
                                            "bug: please report)")
    _layout(graph)
    name = answer.get("name") if isinstance(answer.get("name"), str) else ""
    project = Project(graph=graph, name=clean_project_name(
        (f"{req.source}" if req.torchvision else name) or "Imported"))
    where = f"torchvision:{req.source}" if req.torchvision else f"{Path(req.path).name}:{req.cls}"
    project.description = (f"Imported from {where} at input {_fmt(a.input_shape)}: {len(graph)} blocks, "
                           f"{a.total_params:,} parameters.")
    notes = answer.get("notes") if isinstance(answer.get("notes"), list) else []
    notes = [clean_text(n)[:500] for n in notes if isinstance(n, str)][:50]
    weights_path = None
    if weights_to is not None:
        weights_path = _carry_weights(answer, tmp, graph, Path(weights_to), label)
        project.training["init_weights"] = str(weights_path)
    if req.torchvision and req.state_dict is None:
        notes.append("the weights are torchvision's random initialisation (weights=None); give a state_dict file to "
                     "start from trained weights")
    return ImportResult(project, weights_path, notes)


def _carry_weights(answer: dict, tmp: Path, graph, weights_to: Path, label: str) -> Path:
    """Copy the weights file the child wrote, as bytes: the editor's process never loads torch (the
    file is only ever read with torch.load(weights_only=True), by training)."""
    from ..fileio import atomic_write
    from .child import WEIGHTS

    blocks = answer.get("weight_blocks")
    if answer.get("weights") is not True or not isinstance(blocks, list) or not (tmp / WEIGHTS).is_file():
        raise ImportRefused(f"{label}: the weights could not be carried over (the import wrote none)")
    for nid in blocks:
        if not isinstance(nid, str) or nid not in graph:
            raise ImportRefused(f"{label}: the weights name a block {nid!r} the graph lacks (an importer bug)")
    try:
        data = (tmp / WEIGHTS).read_bytes()
        atomic_write(weights_to, lambda f: f.write(data))
    except OSError as exc:
        raise ImportRefused(f"cannot write {weights_to}: {exc.strerror or exc}") from None
    return weights_to.resolve()


def _normal(spec, k: str, v: Any) -> Any:
    try:
        return spec.check_param(k, v)
    except Exception:  # noqa: BLE001 - a value no block takes never equals a resolved one
        return v


def _fmt(shape) -> str:
    return "×".join(str(d) for d in (shape or ()))


def _layout(graph) -> None:
    """Each scope (the top level and every group) laid out on its own, with its groups as single
    blocks: what the canvas shows when a group is closed or opened. Blocks keep their type, so the
    parts of a Split still fan out side by side in port order."""
    from ..graph import Graph, GraphError
    from ..layout import layered_layout

    for scope in [None] + [g.id for g in graph.groups]:
        nodes, groups = graph.members(scope)
        if not nodes and not groups:
            continue
        stand = Graph()
        with stand.batch():
            for nid in nodes:
                n = graph.node(nid)
                stand.add_node(n.type, dict(n.params), node_id=nid, name="")
            for gid in groups:  # a block that takes any number of inputs stands for the group
                stand.add_node("Concat", {}, node_id=gid, name="")
            seen: set[tuple[str, str]] = set()
            for src, dst, port in graph.edges_with_ports:
                s, d = graph.scope_of(src, scope), graph.scope_of(dst, scope)
                if s is None or d is None or s == d or (s, d) in seen:
                    continue
                seen.add((s, d))
                try:
                    stand.connect(s, d, port=port if s in nodes else 0)
                except GraphError:  # a layout hint only: the graph itself is checked elsewhere
                    continue
        for m, (x, y) in layered_layout(stand).items():
            if m in groups:
                graph.move_group(m, (x, y))
            else:
                graph.move(m, (x, y))


__all__ = ["ImportRefused", "ImportResult", "import_model", "import_in_process", "parse_input"]

