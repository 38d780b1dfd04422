"""Project files: versioned, human-readable JSON, saved atomically, loaded with errors that name
the file and the field. See docs/project-format.md."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .blocks import ParamError, UnknownBlockError, get_spec
from .blocks.base import _show
from .fileio import atomic_write_text
from .graph import Graph, GraphError, check_id, check_pos, clean_text

FORMAT_NAME = "cnnbuilder-project"
FORMAT_VERSION = 4
MAX_FILE_BYTES = 64 * 1024 * 1024  # a 1000-block project is ~200 KB; anything this big is not ours
MAX_NODES = 20_000
MAX_DESCRIPTION = 10_000  # characters; an architecture note is about 1,000


class ProjectError(Exception):
    """A project file cannot be read; the message names the file and the field."""


@dataclass
class Project:
    graph: Graph = field(default_factory=Graph)
    name: str = "Untitled"
    training: dict[str, Any] = field(default_factory=dict)  # training settings (see core.training)
    path: Path | None = None
    description: str = ""  # a paragraph about the model (the architecture templates carry one)

    def __setattr__(self, key: str, value: Any) -> None:
        # Every way a name comes in (file, Save As from an undecodable file name, the GUI) ends
        # here, so a name that could not be saved or printed never reaches the project.
        if key == "name":
            if not isinstance(value, str):
                raise ProjectError(f"a project name must be text, got {type(value).__name__}")
            value = clean_project_name(value)
        elif key == "description":
            if not isinstance(value, str):
                raise ProjectError(f"a project description must be text, got {type(value).__name__}")
            value = clean_text(value).strip()[:MAX_DESCRIPTION]
        object.__setattr__(self, key, value)


def _v1_to_v2(data: dict) -> dict:
    # Version 2 lets an edge name the output it leaves from ("from_port", for Split and Chunk); a
    # version-1 edge has none, which means output 0: the file reads as it is.
    return data


def _v2_to_v3(data: dict) -> dict:
    # Version 3 adds an optional top-level "description" (a paragraph about the model); a version-2
    # file has none, which means no description: the file reads as it is.
    return data


def _v3_to_v4(data: dict) -> dict:
    # Version 4 adds optional "groups" (collapsible groups of blocks) and a block's "group"; a
    # version-3 file has none, which means every block at the top level: the file reads as it is.
    return data


# Each migration turns the dict of version N into version N + 1.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    nodes = []
    for n in graph:
        spec = n.spec
        entry: dict[str, Any] = {"id": n.id, "type": n.type}
        if n.name:
            entry["name"] = n.name
        entry["params"] = {k: spec.param_map[k].to_json(v) for k, v in n.params.items()}
        entry["pos"] = [round(n.pos[0], 1), round(n.pos[1], 1)]
        if n.group is not None:
            entry["group"] = n.group
        nodes.append(entry)
    edges = [{"from": s, "to": d, "from_port": p} if p else {"from": s, "to": d} for s, d, p in graph.edges_with_ports]
    out: dict[str, Any] = {"nodes": nodes, "edges": edges}
    if graph.groups:
        out["groups"] = [{"id": g.id, "name": g.name, **({"parent": g.parent} if g.parent else {}),
                          "pos": [g.pos[0], g.pos[1]], **({"class": g.cls} if g.cls else {})} for g in graph.groups]
    return out


def project_to_dict(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "name": project.name}
    if project.description:
        data["description"] = project.description
    data.update(graph_to_dict(project.graph))
    if project.training:
        data["training"] = project.training
    return data


def dumps(project: Project) -> str:
    # One node per line keeps diffs readable; params stay on the node's line.
    data = project_to_dict(project)
    head = {k: v for k, v in data.items() if k not in ("nodes", "edges", "groups", "training")}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},")
    lines.append('  "nodes": [')
    lines.append(",\n".join("    " + json.dumps(n, ensure_ascii=False) for n in data["nodes"]))
    lines.append("  ],")
    lines.append('  "edges": [')
    lines.append(",\n".join("    " + json.dumps(e) for e in data["edges"]))
    if "groups" in data:
        lines.append("  ],")
        lines.append('  "groups": [')
        lines.append(",\n".join("    " + json.dumps(g, ensure_ascii=False) for g in data["groups"]))
    lines.append("  ]" + ("," if "training" in data else ""))
    if "training" in data:
        training = json.dumps(data["training"], indent=2, ensure_ascii=False)
        lines.append('  "training": ' + training.replace("\n", "\n  "))
    lines.append("}")
    return "\n".join(line for line in lines if line.strip() != "") + "\n"


def save_project(project: Project, path: str | os.PathLike) -> None:
    """Write atomically: a crash mid-save leaves the old file whole."""
    path = Path(path)
    text = dumps(project)
    atomic_write_text(path, text)
    project.path = path


def load_project(path: str | os.PathLike) -> Project:
    path = Path(path)
    where = display_path(path)
    project = loads(read_limited(path, MAX_FILE_BYTES, where, "a project file", ProjectError), where)
    project.path = path
    return project


def display_path(path: str | os.PathLike) -> str:
    """A path as messages show it: undecodable bytes and control characters escaped."""
    text = os.fsdecode(path)
    return text if clean_text(text) == text else ascii(text)[1:-1]


def read_limited(path: Path, limit: int, where: str, what: str, error: type[Exception]) -> bytes:
    """Read at most `limit` bytes: stat says 0 for /dev/zero and /proc files, so the size check
    is made on what is read, and only regular files are read at all (a FIFO would block)."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise error(f"{where}: not a regular file")
            raw = f.read(limit + 1)
    except IsADirectoryError:
        raise error(f"{where}: is a folder, not {what}") from None
    except OSError as exc:
        raise error(f"{where}: cannot open ({exc.strerror or exc})") from None
    if len(raw) > limit:
        raise error(f"{where}: more than {limit // (1024 * 1024)} MiB is too large for {what}")
    return raw


def loads(raw: bytes | str, where: str = "<project>") -> Project:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{where}: not a text file (invalid UTF-8 at byte {exc.start})") from None
    if not text.strip():
        raise ProjectError(f"{where}: the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                           "the file may be truncated or damaged") from None
    except RecursionError:
        raise ProjectError(f"{where}: nested too deeply to be a project file") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ProjectError(f"{where}: not a project file ({exc})") from None
    try:
        return project_from_dict(data, where)
    except RecursionError:  # values nested hundreds deep inside an otherwise valid file
        raise ProjectError(f"{where}: nested too deeply to be a project file") from None


def project_from_dict(data: Any, where: str = "<project>") -> Project:
    if not isinstance(data, dict):
        raise ProjectError(f"{where}: expected a JSON object at the top level")
    fmt = data.get("format")
    if fmt != FORMAT_NAME:
        raise ProjectError(f"{where}: field 'format' should be {FORMAT_NAME!r} (got {_short(fmt)}); "
                           "is this a cnnbuilder project?")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError(f"{where}: field 'version' must be a positive whole number (got {_short(version)})")
    if version > FORMAT_VERSION:
        raise ProjectError(f"{where}: written by a newer cnnbuilder (format version {_short(version)}; this version "
                           f"reads up to {FORMAT_VERSION}). Update cnnbuilder to open it.")
    while version < FORMAT_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    name = data.get("name", "Untitled")
    if not isinstance(name, str):
        raise ProjectError(f"{where}: field 'name' must be text")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ProjectError(f"{where}: field 'description' must be text (got {_short(description)})")
    training = data.get("training", {})
    if not isinstance(training, dict):
        raise ProjectError(f"{where}: field 'training' must be an object")
    _check_plain(training, f"{where}: training", 0)
    graph = graph_from_dict(data, where)
    return Project(graph=graph, name=clean_project_name(name), training=training, description=description)


def clean_project_name(name: str) -> str:
    return clean_text(name).strip()[:200] or "Untitled"


def _check_plain(value: Any, at: str, depth: int) -> None:
    """Training settings are flat values and small lists; anything deeper, or text that could
    not be written back, is damage (and would fail only later, at save time)."""
    if depth > 4:
        raise ProjectError(f"{at}: nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            if clean_text(k) != k:
                raise ProjectError(f"{at}: a setting name holds control or unencodable characters")
            _check_plain(v, f"{at}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(v, f"{at}[{i}]", depth + 1)
    elif isinstance(value, str):
        if clean_text(value) != value:
            raise ProjectError(f"{at}: holds control or unencodable characters")


def graph_from_dict(data: dict[str, Any], where: str = "<graph>") -> Graph:
    nodes = data.get("nodes")
    edges = data.get("edges", [])
    if not isinstance(nodes, list):
        raise ProjectError(f"{where}: field 'nodes' must be a list")
    if not isinstance(edges, list):
        raise ProjectError(f"{where}: field 'edges' must be a list")
    if len(nodes) > MAX_NODES:
        raise ProjectError(f"{where}: {len(nodes)} blocks is more than this version handles ({MAX_NODES})")
    graph = Graph()
    with graph.batch():
        _groups_from_list(graph, data.get("groups", []), where)
        for i, entry in enumerate(nodes):
            at = f"{where}: nodes[{i}]"
            if not isinstance(entry, dict):
                raise ProjectError(f"{at}: expected an object")
            nid = entry.get("id")
            try:
                check_id(nid)
            except GraphError as exc:
                raise ProjectError(f"{at}.id: {exc}") from None
            at = f"{where}: block {nid!r}"
            unknown = set(entry) - {"id", "type", "name", "params", "pos", "group"}
            if unknown:
                raise ProjectError(f"{at}: unknown field {_short(sorted(unknown)[0])}")
            type_name = entry.get("type")
            if not isinstance(type_name, str):
                raise ProjectError(f"{at}.type: expected a block type name (got {_short(type_name)})")
            try:
                get_spec(type_name)
            except UnknownBlockError:
                raise ProjectError(f"{at}.type: unknown block type {_short(type_name)}") from None
            params = entry.get("params", {})
            if not isinstance(params, dict):
                raise ProjectError(f"{at}.params: expected an object")
            try:
                pos = check_pos(entry.get("pos", [0, 0]))
            except GraphError as exc:
                raise ProjectError(f"{at}.pos: {exc}") from None
            name = entry.get("name", "")
            if not isinstance(name, str):
                raise ProjectError(f"{at}.name: expected text")
            group = entry.get("group")
            if group is not None and (not isinstance(group, str) or group not in {g.id for g in graph.groups}):
                raise ProjectError(f"{at}.group: no group with id {_short(group)}")
            try:
                graph.add_node(type_name, params, name=name, pos=pos, node_id=nid, group=group)
            except ParamError as exc:
                raise ProjectError(f"{at}.params.{_field(exc.param)}: {exc.reason}") from None
            except GraphError as exc:
                raise ProjectError(f"{at}: {exc}") from None
        pairs = []
        for i, e in enumerate(edges):
            at = f"{where}: edges[{i}]"
            if not isinstance(e, dict) or not {"from", "to"} <= set(e) <= {"from", "to", "from_port"}:
                raise ProjectError(f"{at}: expected {{\"from\": id, \"to\": id}} (and optionally \"from_port\")")
            src, dst = e["from"], e["to"]
            for key, nid in (("from", src), ("to", dst)):
                if not isinstance(nid, str) or nid not in graph:
                    raise ProjectError(f"{at}.{key}: no block with id {_short(nid)}")
            port = e.get("from_port", 0)
            bad_port = graph.port_problem(src, port)
            if bad_port:
                raise ProjectError(f"{at}.from_port: {bad_port}")
            pairs.append((src, dst, None, port))
        try:
            graph.connect_all(pairs)
        except GraphError as exc:
            raise ProjectError(f"{where}: edges[{getattr(exc, 'edge_index', '?')}]: {exc}") from None
    return graph


def _groups_from_list(graph: Graph, groups: Any, where: str) -> None:
    """Groups before blocks: each one after its parent, whatever order the file lists them in."""
    if not isinstance(groups, list):
        raise ProjectError(f"{where}: field 'groups' must be a list")
    entries: dict[str, tuple[int, dict]] = {}
    for i, g in enumerate(groups):
        at = f"{where}: groups[{i}]"
        if not isinstance(g, dict):
            raise ProjectError(f"{at}: expected an object")
        unknown = set(g) - {"id", "name", "parent", "pos", "class"}
        if unknown:
            raise ProjectError(f"{at}: unknown field {_short(sorted(unknown)[0])}")
        try:
            gid = check_id(g.get("id"))
        except GraphError as exc:
            raise ProjectError(f"{at}.id: {exc}") from None
        if gid in entries:
            raise ProjectError(f"{at}.id: a group with id {gid!r} is listed twice")
        entries[gid] = (i, g)
    made: set[str] = set()

    def make(gid: str, chain: tuple[str, ...]) -> None:
        i, g = entries[gid]
        at = f"{where}: group {gid!r}"
        parent = g.get("parent")
        if parent is not None:
            if not isinstance(parent, str) or parent not in entries:
                raise ProjectError(f"{at}.parent: no group with id {_short(parent)}")
            if parent in chain:
                raise ProjectError(f"{at}.parent: groups cannot hold each other in a circle")
            if parent not in made:
                make(parent, (*chain, gid))
        name = g.get("name", "")
        if not isinstance(name, str):
            raise ProjectError(f"{at}.name: expected text")
        cls = g.get("class", "")
        try:
            pos = check_pos(g.get("pos", [0, 0]))
        except GraphError as exc:
            raise ProjectError(f"{at}.pos: {exc}") from None
        try:
            graph.add_group(name, parent=parent, group_id=gid, pos=pos, cls=cls)
        except GraphError as exc:
            raise ProjectError(f"{at}: {exc}") from None
        made.add(gid)

    if len(entries) > MAX_NODES:
        raise ProjectError(f"{where}: {len(entries)} groups is more than this version handles ({MAX_NODES})")
    for gid in entries:
        if gid not in made:
            make(gid, (gid,))
    graph._groups = {gid: graph._groups[gid] for gid in entries}  # the file's order, so a save reads the same


def _short(value: Any) -> str:
    return _show(value)


def _field(name: str) -> str:
    """A field name from a file, as a message can show it (short and printable, else quoted)."""
    return name if name.isidentifier() and len(name) <= 40 else _short(name)
