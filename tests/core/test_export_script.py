"""The exported training script: ruff-clean, standalone, the same training as the app, checkpoints
that travel both ways, TensorBoard and CSV logs, and clear messages for bad input."""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnbuilder.cli import main as cli_main
from cnnbuilder.core.codegen import generate, instantiate
from cnnbuilder.core.export import ExportError, generate_script
from cnnbuilder.core.project import save_project
from cnnbuilder.core.training import synthetic
from cnnbuilder.core.training.augment import BatchTransform, batch_generator
from cnnbuilder.core.training.checkpoint import export_weights, load_checkpoint
from cnnbuilder.core.training.config import TrainConfig
from cnnbuilder.core.training.engine import Trainer
from cnnbuilder.core.training.events import EpochMetrics, Finished

from .script_helpers import EXAMPLES, SMALL, load_script, project, read_metrics, write_script

# Augmentation, dropout, a per-step schedule, SGD and clipping: every random draw and every
# setting has to match the app's for the numbers to match.
# (One-cycle and cosine schedules are planned for the run's length: the folder test covers one-cycle.)
RICH = dict(SMALL, optimizer="sgd", lr=0.05, scheduler="step", gamma=0.5, grad_clip=1.0, crop_padding=2, hflip=True,
            rotation=10.0, color_jitter=0.2)
FIELDS = ("train_loss", "train_acc", "val_loss", "val_acc")


def with_dropout(p):
    g = p.graph
    fc = next(n for n in g if n.type == "Linear")
    flat = g.inputs(fc.id)[0]
    g.disconnect(flat, fc.id)
    drop = g.add_node("Dropout", {"p": 0.3})
    g.connect(flat, drop.id)
    g.connect(drop.id, fc.id)
    return p


def app_run(p, **changes):
    cfg = TrainConfig.from_dict(p.training).replace(device="cpu", log_interval=0.0, **changes)
    trainer = Trainer(p.graph, cfg)
    events = list(trainer.run())
    assert isinstance(events[-1], Finished), events[-1]
    return trainer, [e for e in events if isinstance(e, EpochMetrics)], events[-1]


def assert_same_epochs(app_epochs, rows):
    assert len(rows) == len(app_epochs)
    for ev, row in zip(app_epochs, rows, strict=True):
        assert row["epoch"] == ev.epoch and row["step"] == ev.step
        for key in FIELDS:
            # Same data, order, draws and kernels: equal up to float rounding, far inside the noise.
            assert row[key] == pytest.approx(getattr(ev, key), rel=1e-4, abs=1e-6), (ev.epoch, key)


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """One script, run for one epoch, then resumed to two; the app's two-epoch run beside it."""
    tmp = tmp_path_factory.mktemp("rich")
    p = with_dropout(project(**RICH))
    script = load_script(write_script(p, tmp))
    script.main(["--out", str(tmp / "a"), "--device", "cpu", "--epochs", "1", "--tensorboard", str(tmp / "tb")])
    first = load_checkpoint(tmp / "a" / "checkpoint.pt")
    script.main(["--out", str(tmp / "b"), "--device", "cpu", "--resume", str(tmp / "a" / "checkpoint.pt")])
    trainer, epochs, finished = app_run(p)
    return {"tmp": tmp, "project": p, "script": script, "first": first, "app": trainer, "epochs": epochs,
            "finished": finished}


def test_script_trains_like_the_app_and_resumes_exactly(rich):
    # epoch 1 from the first run, epoch 2 from the resumed one: together the app's uninterrupted run
    rows = read_metrics(rich["tmp"] / "b")
    assert_same_epochs(rich["epochs"], rows)
    assert read_metrics(rich["tmp"] / "a")[0]["train_loss"] == rows[0]["train_loss"]
    test_csv = (rich["tmp"] / "b" / "test.csv").read_text().splitlines()
    assert float(test_csv[1].split(",")[1]) == pytest.approx(rich["finished"].test_acc, abs=1e-9)


def test_app_resumes_a_script_checkpoint_exactly(rich):
    saved = rich["first"]
    assert saved["format"] == "cnnbuilder-checkpoint" and saved["epoch"] == 1 and saved["batch"] == 0
    p = rich["project"]
    cfg = TrainConfig.from_dict(p.training).replace(device="cpu", log_interval=0.0)
    events = list(Trainer(p.graph, cfg, resume=rich["tmp"] / "a" / "checkpoint.pt").run())
    assert isinstance(events[-1], Finished), events[-1]
    resumed = [e for e in events if isinstance(e, EpochMetrics)]
    assert [e.epoch for e in resumed] == [2]
    for key in FIELDS:
        assert getattr(resumed[0], key) == pytest.approx(getattr(rich["epochs"][1], key), rel=1e-4, abs=1e-6)
    # the app sees the script's first epoch in its curves
    assert events[-1].history["train_loss"][0] == pytest.approx(rich["epochs"][0].train_loss, rel=1e-4)


def test_script_resumes_an_app_checkpoint_exactly(rich, tmp_path):
    p = rich["project"]
    cfg = TrainConfig.from_dict(p.training).replace(device="cpu", log_interval=0.0, epochs=1)
    trainer = Trainer(p.graph, cfg)
    assert isinstance(list(trainer.run())[-1], Finished)
    trainer.save_checkpoint(tmp_path / "app.ckpt")
    rich["script"].main(["--out", str(tmp_path / "c"), "--device", "cpu", "--resume", str(tmp_path / "app.ckpt")])
    assert_same_epochs(rich["epochs"], read_metrics(tmp_path / "c"))


def test_weights_travel_both_ways(rich, tmp_path, capsys):
    p = rich["project"]
    # the script's model.pt loads into the app's generated model, with weights_only=True
    net = instantiate(generate(p.graph))
    net.load_state_dict(torch.load(rich["tmp"] / "b" / "model.pt", weights_only=True))
    # the app's exported .pt starts the script from those weights
    export_weights(rich["app"].model, p.graph, tmp_path / "w")
    script = rich["script"]
    args = script.parse_args(["--device", "cpu", "--resume", str(tmp_path / "w" / "model.pt")])
    ctx = script.setup_distributed("cpu")
    run = script.make_run(args, ctx, script.load_data(args, ctx), script.build_model(args.seed))
    assert "loaded the weights" in capsys.readouterr().out
    assert run.epoch == 0
    for key, value in rich["app"].model.state_dict().items():
        assert torch.equal(run.net.state_dict()[key].cpu(), value.cpu())


def test_tensorboard_events_hold_the_csv_numbers(rich):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(rich["tmp"] / "tb"))
    acc.Reload()
    row = read_metrics(rich["tmp"] / "a")[0]
    for tag, key in (("train/loss", "train_loss"), ("train/accuracy", "train_acc"), ("val/loss", "val_loss"),
                     ("val/accuracy", "val_acc"), ("lr", "lr")):
        (event,) = acc.Scalars(tag)
        assert event.step == 1 and event.value == pytest.approx(row[key], rel=1e-6)
    test_acc = float((rich["tmp"] / "a" / "test.csv").read_text().splitlines()[1].split(",")[1])
    assert acc.Scalars("test/accuracy")[0].value == pytest.approx(test_acc, rel=1e-6)


def test_shapes_generator_and_augmentation_equal_the_apps(rich):
    script = rich["script"]
    for n, seed, size, channels, split in ((37, 0, 28, 1, 0), (25, 7, 20, 3, 1)):
        for a, b in zip(script.make_shapes(n, seed, size, channels, split),
                        synthetic.make_shapes(n, seed, size, channels, split), strict=True):
            np.testing.assert_array_equal(a, b)
    cfg = TrainConfig.from_dict(rich["project"].training)
    x = torch.from_numpy(synthetic.make_shapes(16, 3, 28, 1)[0])
    app = BatchTransform(cfg, (0.3,), (0.2,), 1, "cpu")(x, train=True, generator=batch_generator(0, 1, 2))
    mine = script.Preprocess((0.3,), (0.2,), torch.device("cpu"))(x, batch_generator(0, 1, 2))
    torch.testing.assert_close(mine, app, rtol=0, atol=0)
    # two processes, each with its half of the batch dealt in turn, augment like one with all of it
    halves = [script.Preprocess((0.3,), (0.2,), torch.device("cpu"))(x[r::2], batch_generator(0, 1, 2), r, 2)
              for r in range(2)]
    torch.testing.assert_close(halves[0], app[0::2], rtol=0, atol=0)
    torch.testing.assert_close(halves[1], app[1::2], rtol=0, atol=0)


def _folder(root: Path, per_class: int = 3) -> Path:
    from PIL import Image

    x, y = synthetic.make_shapes(10 * per_class, 5, 28, 1)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        d = root / f"c{label}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0]).save(d / f"{i:03d}.png")
    (root / "c0" / "broken.png").write_bytes(b"not a png")
    return root


def test_image_folder_trains_like_the_app(tmp_path, capsys):
    root = _folder(tmp_path / "images")
    p = project(dataset="folder", data_root=str(root), epochs=1, batch_size=8, val_split=0.2, scheduler="onecycle")
    script = load_script(write_script(p, tmp_path))
    script.main(["--out", str(tmp_path / "out"), "--device", "cpu"])
    assert "broken.png" in capsys.readouterr().out  # an unreadable image is skipped, with a note
    # the same project through `cnnbuilder train` itself
    save_project(p, tmp_path / "folder.json")
    assert cli_main(["train", str(tmp_path / "folder.json"), "--device", "cpu", "--quiet",
                     "--checkpoint", str(tmp_path / "cli.ckpt")]) == 0
    h = load_checkpoint(tmp_path / "cli.ckpt")["history"]
    rows = read_metrics(tmp_path / "out")
    assert [r["epoch"] for r in rows] == h["epoch"] and [r["step"] for r in rows] == h["epoch_step"]
    for key in FIELDS:
        assert [r[key] for r in rows] == pytest.approx(h[key], rel=1e-4, abs=1e-6), key


def test_script_is_ruff_clean_and_standalone(tmp_path):
    """Every example with every dataset it fits; checked with the project's rules and ruff's defaults."""
    files = []
    for example in sorted(EXAMPLES.glob("*.json")):
        for dataset in ("shapes", "mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "folder"):
            p = project(example.stem, dataset=dataset, hflip=True)
            try:
                text = generate_script(p)
            except ExportError as exc:
                assert "does not fit" in str(exc)
                continue
            files.append(tmp_path / f"{example.stem}_{dataset}.py")
            files[-1].write_text(text, encoding="utf-8")
            imported = {a.name.split(".")[0] for node in ast.walk(ast.parse(text))
                        if isinstance(node, (ast.Import, ast.ImportFrom))
                        for a in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
            assert imported - set(sys.stdlib_module_names) <= {"torch", "torchvision", "numpy", "PIL"}, imported
    assert len(files) >= 12
    rules = ["--line-length", "120", "--select", "E,F,W,I,B,UP", "--target-version", "py310"]
    # ... and pycodestyle's blank-line rules (a preview in ruff)
    for extra in (rules, [], ["--preview", "--select", "E3"]):
        r = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", *extra,
                            *map(str, files)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:]


def test_unfit_or_broken_projects_are_refused_with_a_reason():
    with pytest.raises(ExportError, match="Input block takes 3×32×32"):
        generate_script(project("resnet_small"))
    p = project()
    p.graph.remove_node(next(n.id for n in p.graph if n.type == "Flatten"))
    with pytest.raises(ExportError, match="problems"):
        generate_script(p)
    with pytest.raises(ExportError, match="epochs"):
        generate_script(project(), TrainConfig(epochs=0))
    bare = project()
    for n in [n for n in bare.graph if n.type not in ("Input", "Flatten")]:
        bare.graph.remove_node(n.id)
    bare.graph.connect(*(n.id for n in bare.graph))
    with pytest.raises(ExportError, match="no trainable parameters"):
        generate_script(bare)


@pytest.mark.parametrize("payload, message", [
    (b"garbage", "not a checkpoint or weights file"),
    (None, "no such checkpoint file"),
])
def test_bad_resume_files_get_one_line(rich, tmp_path, payload, message):
    path = tmp_path / "x.pt"
    if payload is not None:
        path.write_bytes(payload)
    with pytest.raises(SystemExit, match=message) as exc:
        rich["script"].read_checkpoint(str(path))
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


def test_a_checkpoint_of_another_model_is_refused(rich, tmp_path):
    torch.save({"layers.0.weight": torch.zeros(3)}, tmp_path / "other.pt")
    script = rich["script"]
    args = script.parse_args(["--device", "cpu", "--resume", str(tmp_path / "other.pt")])
    ctx = script.setup_distributed("cpu")
    with pytest.raises(SystemExit, match="saved from a different model"):
        script.make_run(args, ctx, script.load_data(args, ctx), script.build_model(0))


@settings(max_examples=int(os.environ.get("CNNB_EXAMPLES", 25)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300) | st.sampled_from([b"PK\x03\x04" + b"\0" * 40, b"\x80\x02}q\x00."]))
def test_fuzzed_resume_files_never_raise_a_traceback(rich, tmp_path, payload):
    path = tmp_path / "fuzz.pt"
    path.write_bytes(payload)
    with pytest.raises(SystemExit) as exc:
        rich["script"].read_checkpoint(str(path))
    assert str(path) in str(exc.value)


@settings(max_examples=int(os.environ.get("CNNB_EXAMPLES", 30)), deadline=None)
@given(name=st.text(max_size=60), block=st.text(max_size=30), root=st.text(max_size=60),
       filename=st.text(max_size=40))
def test_hostile_names_and_paths_stay_data(name, block, root, filename):
    """Project names, block names and folders are user text: the script must stay valid Python
    that holds them as plain strings, never as code."""
    p = project(data_root=root)
    p.name = name
    conv = next(n.id for n in p.graph if n.type == "Conv2d")
    p.graph.rename(conv, block)
    text = generate_script(p, filename=filename)
    tree = ast.parse(text)
    assert ast.get_docstring(tree).startswith("Train ")
    values = {node.targets[0].id: node.value for node in tree.body
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    assert ast.literal_eval(values["SETTINGS"])["data_root"] == root
    assert ast.literal_eval(values["GRAPH"])["nodes"][1].get("name", "") == p.graph.node(conv).name
    assert isinstance(ast.literal_eval(values["TITLE"]), str)


@pytest.mark.slow
@pytest.mark.timeout(600)  # about 15 s on an idle 2-core CPU; leave room for a busy machine
def test_mnist_one_epoch_reaches_98_percent(mnist_dir, tmp_path):
    p = project("mnist_cnn", dataset="mnist", data_root=str(mnist_dir), epochs=1)
    script = load_script(write_script(p, tmp_path))
    threads = torch.get_num_threads()
    # One thread: on a busy machine OpenMP threads waiting for each other made this ten times slower.
    torch.set_num_threads(1)
    try:
        script.main(["--out", str(tmp_path / "out"), "--device", "auto"])
    finally:
        torch.set_num_threads(threads)
    test_acc = float((tmp_path / "out" / "test.csv").read_text().splitlines()[1].split(",")[1])
    assert test_acc >= 0.98
    assert math.isfinite(read_metrics(tmp_path / "out")[0]["val_acc"])
