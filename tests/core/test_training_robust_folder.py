"""Image folders cannot corrupt the training data: links are followed only inside their own class
folder (so never out of the root, into another class, or round a loop) and no folder or image is
read twice; empty classes and links not followed are reported as notes the engine, the CLI and the
panel show. The fuzzer builds random trees (nesting, links to the root, a parent, the class itself,
another class, outside, each other, themselves, nowhere; empty classes; unreadable files) and checks
the images and their labels against the files that are physically in each class folder.

Bounded by default; CNNB_FUZZ=long runs twenty times more examples."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnbuilder.core.training.config import TrainConfig
from cnnbuilder.core.training.data import DataError, dataset_meta, load_data, scan_folder

SCALE = 20 if os.environ.get("CNNB_FUZZ") == "long" else 1


def image(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value % 256, np.uint8)).save(path)
    return path


def labels_by_real_path(scan) -> dict[str, str]:
    out = {}
    for items in scan.files.values():
        for p, i in items:
            real = os.path.realpath(p)
            assert real not in out, f"{p} read twice"
            out[real] = scan.classes[i]
    return out


def test_a_link_to_the_root_inside_a_class_is_not_followed(tmp_path):
    """The testers' tree: 40 files became 1,640 images, 800 of them labelled with the wrong class."""
    root = tmp_path / "pets"
    for c in ("cats", "dogs"):
        for i in range(20):
            image(root / c / f"{i}.png", i)
    os.symlink(root, root / "cats" / "loop")
    scan = scan_folder(str(root))
    assert len(scan.files["all"]) == 40
    assert labels_by_real_path(scan) == {os.path.realpath(root / c / f"{i}.png"): c
                                         for c in ("cats", "dogs") for i in range(20)}
    assert any("not followed" in n and "loop" in n for n in scan.notes)
    b = load_data(TrainConfig(dataset="folder", data_root=str(root), val_split=0.25))
    assert len(b.train) + len(b.val) == 40


def test_links_inside_a_class_are_read_once_and_links_out_of_it_not_at_all(tmp_path):
    root, outside = tmp_path / "data", tmp_path / "outside"
    image(outside / "o.png")
    image(root / "a" / "1.png")
    image(root / "a" / "sub" / "2.png")
    image(root / "a" / ".hidden" / "3.png")  # hidden: only read through a link
    image(root / "b" / "4.png")
    for name, target in (("to_sub", root / "a" / "sub"), ("again.png", root / "a" / "1.png"),
                         ("to_hidden", root / "a" / ".hidden"), ("to_b", root / "b"), ("to_out", outside),
                         ("parent", root), ("self", root / "a"), ("b4.png", root / "b" / "4.png"),
                         ("broken.png", root / "a" / "missing.png")):
        os.symlink(target, root / "a" / name)
    scan = scan_folder(str(root))
    got = labels_by_real_path(scan)
    assert got == {os.path.realpath(p): c for p, c in ((root / "a" / "1.png", "a"), (root / "a" / "sub" / "2.png", "a"),
                                                       (root / "a" / ".hidden" / "3.png", "a"),
                                                       (root / "b" / "4.png", "b"),
                                                       (root / "a" / "missing.png", "a"))}
    notes = " ".join(scan.notes)
    assert "4 link(s) leading out of their folder were not followed" in notes  # to_b, to_out, parent, b4.png
    b = load_data(TrainConfig(dataset="folder", data_root=str(root), val_split=0.0))
    assert len(b.train) == 4 and any("broken.png" in s for s in b.skipped)


def test_top_level_links_stay_inside_the_image_folder(tmp_path):
    root, outside = tmp_path / "data", tmp_path / "outside"
    image(outside / "x" / "o.png")
    image(root / "a" / "1.png")
    image(root / "b" / "2.png")
    image(root / ".store" / "c" / "3.png")
    os.symlink(outside / "x", root / "elsewhere")  # out of the root: not a class
    os.symlink(root, root / "everything")  # the root itself: not a class
    os.symlink(root / ".store" / "c", root / "c")  # inside the root: a class
    scan = scan_folder(str(root))
    assert scan.classes == ("a", "b", "c")
    assert sorted(labels_by_real_path(scan).values()) == ["a", "b", "c"]
    # Split layout: a class folder that leads to a split folder would relabel a whole split.
    split = tmp_path / "split"
    for s in ("train", "test"):
        for c in ("a", "b"):
            image(split / s / c / "1.png")
    os.symlink(split / "test", split / "train" / "z")
    scan = scan_folder(str(split))
    assert scan.classes == ("a", "b") and len(scan.files["train"]) == 2 and len(scan.files["test"]) == 2


def test_an_empty_class_is_a_warning_the_engine_the_cli_and_the_panel_show(tmp_path, capsys):
    from cnnbuilder.cli import main
    from cnnbuilder.core.project import load_project, save_project
    from cnnbuilder.core.training.engine import Trainer
    from cnnbuilder.core.training.events import Finished, Notice

    root = tmp_path / "pets"
    for c in ("cats", "dogs"):
        for i in range(6):
            image(root / c / f"{i}.png", 40 * i)
    (root / "owls").mkdir()
    cfg = TrainConfig(dataset="folder", data_root=str(root), resize=16, epochs=1, batch_size=4, val_split=0.25)
    warning = "no images for class(es) owls: the model keeps an output for each that it never learns to predict"
    assert warning in dataset_meta(cfg).warnings  # the panel lists these in its data note
    project = load_project(Path(__file__).resolve().parents[2] / "resources" / "examples" / "mnist_cnn.json")
    graph = project.graph
    fc = next(n for n in graph if n.type == "Linear")
    graph.set_param(fc.id, "out_features", 3)
    inp = next(n for n in graph if n.type == "Input")
    graph.set_param(inp.id, "shape", [1, 16, 16])
    events = list(Trainer(graph, cfg).run())
    assert isinstance(events[-1], Finished), events[-1]
    assert any(isinstance(e, Notice) and e.message == warning for e in events)
    project.training = cfg.to_dict()
    save_project(project, tmp_path / "p.json")
    assert main(["train", str(tmp_path / "p.json"), "--quiet"]) == 0
    assert f"note: {warning}" in capsys.readouterr().err


# -- the fuzzer ---------------------------------------------------------------------------------------

TARGETS = ("root", "class", "parent", "other class", "dir", "file", "outside dir", "outside file", "link", "self",
           "missing")


@st.composite
def trees(draw):
    """A plan: per class a list of (relative dir, kind, name) entries, then links (where, target)."""
    n_classes = draw(st.integers(2, 4))
    plan = {}
    for c in range(n_classes):
        dirs = [""]
        entries = []
        for _ in range(draw(st.integers(0, 6))):
            where = draw(st.sampled_from(dirs))
            kind = draw(st.sampled_from(("image", "image", "garbage", "text", "dir")))
            name = f"{kind[0]}{len(entries)}"
            if kind == "dir" and where.count("/") < 3:
                dirs.append(f"{where}/{name}" if where else name)
            entries.append((where, kind, name))
        plan[f"c{c}"] = entries
    links = draw(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(TARGETS), st.integers(0, 10**6)),
                          max_size=8))
    top = draw(st.lists(st.sampled_from(("outside dir", "root")), max_size=2))
    return plan, links, top


def build(base: Path, plan, links, top):
    """Make the tree; return the root and, per class, its real readable images and how many
    image-named entries (readable or not) the class should list."""
    root, outside = base / "root", base / "outside"
    image(outside / "o.png", 7)
    (outside / "d").mkdir()
    expected: dict[str, str] = {}  # real path of a readable image -> class
    listed = Counter()
    dirs, files = [], []
    for c, entries in plan.items():
        (root / c).mkdir(parents=True)
        dirs.append((c, root / c))
        for where, kind, name in entries:
            folder = root / c / where
            if kind == "dir":
                (folder / name).mkdir(parents=True, exist_ok=True)
                dirs.append((c, folder / name))
            elif kind == "image":
                p = image(folder / f"{name}.png", len(expected) * 17)
                expected[os.path.realpath(p)] = c
                listed[c] += 1
                files.append((c, p))
            elif kind == "garbage":
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.png").write_bytes(b"not an image at all")
                listed[c] += 1
                files.append((c, folder / f"{name}.png"))
            else:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.txt").write_text("notes")
                files.append((c, folder / f"{name}.txt"))
    made, dangling = [], set()
    for k, (at, target, pick) in enumerate(links):
        c, folder = dirs[at % len(dirs)]
        others = [d for d in dirs if d[0] != c and d[1].parent == root]
        if target == "root":
            t = root
        elif target == "class":
            t = root / c
        elif target == "parent":
            t = folder.parent
        elif target == "other class":
            t = others[pick % len(others)][1]
        elif target == "dir":
            t = dirs[pick % len(dirs)][1]
        elif target == "file":
            t = files[pick % len(files)][1] if files else root
        elif target == "outside dir":
            t = outside / "d"
        elif target == "outside file":
            t = outside / "o.png"
        elif target == "link":
            t = made[pick % len(made)] if made else root
        elif target == "missing":
            t = root / c / f"missing{k}.png"
        else:
            t = None  # a link to itself: a loop
        name = f"lnk{k}" + (t.suffix if t is not None and t.suffix else ".png" if t is None else "")
        link = folder / name
        os.symlink(link if t is None else t, link)
        made.append(link)
        # Only links that stay inside their class and lead nowhere real add an (unreadable) entry.
        real = os.path.realpath(link)
        inside = real == os.path.realpath(root / c) or real.startswith(os.path.realpath(root / c) + os.sep)
        if name.endswith(".png") and inside and not os.path.exists(real):
            dangling.add((c, real))  # links that end in the same place are one entry
    listed.update(c for c, _ in dangling)
    for k, target in enumerate(top):
        os.symlink(root if target == "root" else outside, root / f"top{k}")
    return root, expected, listed


@settings(max_examples=40 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tree=trees())
def test_fuzz_image_folders_read_each_physical_image_once_with_its_class(tree):
    base = Path(tempfile.mkdtemp(prefix="cnnb-folder-"))
    try:
        root, expected, listed = build(base, *tree)
        classes = tuple(sorted(tree[0]))
        if not listed:
            with pytest.raises(DataError, match="no images"):
                scan_folder(str(root))
            return
        if not expected:
            with pytest.raises(DataError, match="could be read"):
                load_data(TrainConfig(dataset="folder", data_root=str(root), val_split=0.0, resize=8))
            return
        scan = scan_folder(str(root))
        assert scan.classes == classes  # links at the top (to the root, out of it) are no classes
        got = labels_by_real_path(scan)
        readable = {p: c for p, c in got.items() if p in expected}
        assert readable == expected
        assert len(got) == sum(listed.values())  # the rest: garbage files and links to nothing
        empty = [c for c in classes if not listed[c]]
        note = next((n for n in scan.notes if n.startswith("no images for class(es)")), "")
        assert all(c in note for c in empty) and bool(note) == bool(empty)

        b = load_data(TrainConfig(dataset="folder", data_root=str(root), val_split=0.0, resize=8))
        assert len(b.train) == len(expected)
        assert Counter(classes[int(y)] for y in b.train.y) == Counter(expected.values())
    finally:
        shutil.rmtree(base, ignore_errors=True)
