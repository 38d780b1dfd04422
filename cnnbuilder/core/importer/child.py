"""The importer's child process: it imports the user's file (which runs their code), builds the
module, traces it with torch.fx and maps it onto blocks. Everything it hands back is plain data:
`result.json` (a graph in the project format, per-block shapes, notes, or a refusal) and
`weights.pt` written with node_weights.save, which the parent reads with weights_only=True.

Tracing: torch.fx symbolic tracing with every torch.nn module that has a block kept as a leaf,
and the user's own modules traced through (their module path becomes a group). The traced graph is
then run once on a concrete input (batch of 2) recording every value, so shape arithmetic in the
forward (`x.view(x.size(0), -1)`, ShuffleNet's channel shuffle) is read from the values it produced
rather than from the Python that computed them. Python control flow on tensors cannot be traced
and is refused with the user's line; torch.export would specialise it instead, but its ATen-level
graph no longer names the torch.nn modules a block stands for.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path

from .mapping import Refusal, map_module

RESULT = "result.json"
WEIGHTS = "weights.pt"
PHASE = "phase"
LOG = "child.log"


def run(request_json: str, outdir: str) -> None:
    """Target of the spawned process. Never returns normally: it ends with os._exit, so nothing the
    user's code registered (atexit, threads, __del__) runs after the answer is written."""
    out = Path(outdir)
    if hasattr(os, "setsid"):
        try:
            os.setsid()  # its own process group: a timeout kills whatever the user's code started too
        except OSError:
            pass
    request = json.loads(request_json)
    _limit_memory(request.get("memory_limit"))
    # Whatever the user's code allocates dies with this process (killed on a timeout): the caller's
    # resource tracker is not told about it, so it never warns about "leaked" semaphores at exit.
    from multiprocessing import resource_tracker

    resource_tracker.register = resource_tracker.unregister = lambda *args, **kwargs: None
    # The user's prints (Python or C level) go to a log, never to the caller's terminal.
    log = os.open(out / LOG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        answer = build(request, out)
    except BaseException as exc:  # noqa: BLE001 - anything the user's code raises becomes a refusal
        answer = {"ok": False, "message": describe_failure(exc, "importing the module")}
    write_answer(out, answer)
    if hasattr(os, "killpg") and os.getpgrp() == os.getpid():  # only a group of its own (setsid worked)
        os.killpg(0, signal.SIGKILL)  # processes the user's code started end with it
    os._exit(0)


def _limit_memory(limit) -> None:
    try:
        import resource
    except ImportError:  # Windows: no limit; the process is still separate
        return
    if isinstance(limit, int) and limit > 0:
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        try:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        except (ValueError, OSError):
            pass


def write_answer(out: Path, answer: dict) -> None:
    tmp = out / (RESULT + ".part")
    tmp.write_text(json.dumps(answer), encoding="utf-8")
    os.replace(tmp, out / RESULT)  # the parent never sees half an answer


def _phase(out: Path | None, text: str) -> None:
    if out is not None:
        (out / PHASE).write_text(text, encoding="utf-8")


def build(request: dict, out: Path | None) -> dict:
    """Import, construct, trace and map; the answer as plain data. `out` receives the weights."""
    try:
        _phase(out, "building")
        model, where = construct(request)
        _phase(out, "tracing")
        mapped = map_module(model, request.get("input_shape"), where, request.get("torchvision", False))
    except Refusal as exc:
        return {"ok": False, "message": str(exc)}
    weights = False
    if out is not None and request.get("weights"):
        from ..training import node_weights

        # Written here, even when empty, so the editor's process copies the file without loading torch.
        node_weights.save(out / WEIGHTS, mapped.weights or {})
        weights = True
    return {"ok": True, "graph": mapped.graph, "shapes": mapped.shapes, "expect": mapped.expect,
            "origins": mapped.origins, "output_shape": mapped.output_shape, "notes": mapped.notes,
            "weights": weights, "weight_blocks": sorted(mapped.weights or {}), "name": mapped.name}


def construct(request: dict):
    """The module the source names, in eval mode, with the user's state_dict if one was given."""
    import torch

    torch.manual_seed(0)
    args = request.get("args") or {}
    source = request["source"]
    if request.get("torchvision"):
        model, where = _torchvision(source, args)
    else:
        model, where = _from_file(request["path"], request["cls"], args)
    if request.get("state_dict"):
        _load_state_dict(model, request["state_dict"])
    return model.eval(), where


def _torchvision(name: str, args: dict):
    import difflib

    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise Refusal(f"torchvision has no classification model {name!r}{hint}; `torchvision.models.list_models"
                      f"(module=torchvision.models)` lists them")
    if "weights" in args:
        raise Refusal("--args cannot choose torchvision's weights (they would be downloaded); give a weights "
                      "file with --state-dict instead")
    try:
        model = torchvision.models.get_model(name, weights=None, **args)
    except Exception as exc:
        raise Refusal(f"torchvision:{name} could not be built with {json.dumps(args)}: {_one_line(exc)}") from None
    return model, f"torchvision:{name}"


def _from_file(path: str, cls_name: str, args: dict):
    import importlib.util
    import inspect

    from torch import nn

    file = Path(path)
    where = file.name
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the file's own imports of its neighbours work as when run there
    spec = importlib.util.spec_from_file_location("cnnbuilder_user_module", file)
    if spec is None or spec.loader is None:
        raise Refusal(f"{where}: not a Python file that can be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise Refusal(f"{where}:{exc.lineno}: syntax error: {exc.msg}") from None
    except SystemExit as exc:
        raise Refusal(f"{where} called sys.exit({exc.code!r}) while being imported") from None
    except BaseException as exc:  # noqa: BLE001
        raise Refusal(describe_failure(exc, f"importing {where}")) from None
    target = getattr(module, cls_name, None)
    if target is None:
        classes = sorted(k for k, v in vars(module).items()
                         if inspect.isclass(v) and issubclass(v, nn.Module) and v.__module__ == spec.name)
        listed = f" (its nn.Module classes: {', '.join(classes[:10])})" if classes else \
            " (it defines no nn.Module class)"
        raise Refusal(f"{where} has no class {cls_name!r}{listed}")
    if not callable(target):
        raise Refusal(f"{where}: {cls_name} is not a class")
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**args)
        except TypeError:
            missing = [p.name for p in signature.parameters.values()
                       if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                       and p.name not in args]
            unknown = [k for k in args if k not in signature.parameters
                       and not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())]
            if unknown:
                raise Refusal(f"{cls_name} takes no argument {', '.join(unknown)} (it takes "
                              f"{', '.join(signature.parameters) or 'none'})") from None
            example = json.dumps({m: "..." for m in missing})
            raise Refusal(f"{cls_name} needs arguments: {', '.join(missing)}; pass them with --args '{example}'"
                          ) from None
    try:
        model = target(**args)
    except SystemExit as exc:
        raise Refusal(f"{cls_name}() called sys.exit({exc.code!r})") from None
    except BaseException as exc:  # noqa: BLE001
        raise Refusal(describe_failure(exc, f"building {cls_name}()")) from None
    if not isinstance(model, nn.Module):
        raise Refusal(f"{where}: {cls_name}() made a {type(model).__name__}, not a torch.nn.Module")
    return model, where


def _load_state_dict(model, path: str) -> None:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise Refusal(f"{Path(path).name}: no such weights file") from None
    except Exception as exc:
        raise Refusal(f"{Path(path).name}: not a state_dict that can be read safely ({_one_line(exc)})") from None
    for key in ("state_dict", "model", "model_state_dict"):  # a checkpoint that holds one
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise Refusal(f"{Path(path).name}: not a state_dict (a mapping of names to tensors)")
    try:
        model.load_state_dict(data)
    except Exception as exc:
        raise Refusal(f"{Path(path).name} does not fit the module: {_one_line(exc, 400)}") from None


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def user_frame(tb) -> str | None:
    """`file.py:line` of the innermost frame outside torch and cnnbuilder: where the user's code was."""
    from .mapping import _library, _shown_file

    for frame in reversed(traceback.extract_tb(tb)):
        if not _library(frame.filename):
            return f"{_shown_file(frame.filename)}:{frame.lineno}"
    return None


def describe_failure(exc: BaseException, doing: str) -> str:
    if isinstance(exc, Refusal):
        return str(exc)
    if isinstance(exc, SystemExit):
        return f"the module called sys.exit({exc.code!r}) while {doing}"
    if isinstance(exc, RecursionError):
        return f"{doing} recursed too deeply" + (f" ({user_frame(exc.__traceback__)})"
                                                 if user_frame(exc.__traceback__) else "")
    where = user_frame(exc.__traceback__)
    text = f"{doing} raised {_one_line(exc)}" + (f" at {where}" if where else "")
    if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
        text += " (out of memory: the import may use at most 3/4 of this machine's memory)"
    return text


if __name__ == "__main__":  # pragma: no cover - a manual check: python -m cnnbuilder.core.importer.child REQUEST OUT
    run(sys.argv[1], sys.argv[2])
