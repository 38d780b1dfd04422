"""Training settings take any value without a crash: huge integers (float() of a 400-digit int
raises OverflowError; str() of a 5,000-digit one raises ValueError), infinities, NaN, text, lists,
tensors. A project file's bad value falls back to the default with a note naming the setting; the
command line and a checkpoint's settings (strict) stop with one line naming it."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnbuilder.core.training.config import CHECKS, ConfigError, TrainConfig

from .tiny_training import TINY_CFG, tiny_graph

SCALE = 20 if os.environ.get("CNNB_FUZZ") == "long" else 1
HUGE = 10**400
VAST = 10**5000 + 1  # beyond Python's 4,300-digit limit for printing an int


@pytest.mark.parametrize("key", ["lr", "weight_decay", "epochs", "seed", "batch_size", "val_split", "rotation"])
@pytest.mark.parametrize("value,shown", [(HUGE, "a number with 401 digits"),
                                         (VAST, "a number with 5,001 digits"),
                                         (-HUGE, "a negative number with 401 digits")],
                         ids=["400 digits", "5000 digits", "minus 400 digits"])
def test_huge_integers_are_a_message_naming_the_setting(key, value, shown):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({key: value}, strict=True)
    text = str(info.value)
    assert text.startswith(f"{key}: must be at") and text.endswith(f"(got {shown})") and len(text) < 120
    loose = TrainConfig.from_dict({key: value})
    assert getattr(loose, key) == getattr(TrainConfig(), key)
    assert loose.notes == [f"{text}; using the default {getattr(TrainConfig(), key)!r}"]


def test_huge_text_and_infinities():
    for value in ("1" * 5000, "1e400", "inf", "nan", 1e308 * 10, float("nan")):
        with pytest.raises(ConfigError, match=r"^lr: must be a finite number \(got "):
            TrainConfig.from_dict({"lr": value}, strict=True)
    with pytest.raises(ConfigError, match=r"^epochs: expected a whole number, got 2.5$"):
        TrainConfig.from_dict({"epochs": 2.5}, strict=True)


def test_odd_keys_are_notes():
    cfg = TrainConfig.from_dict({VAST: 1, ("a",): 2, "x" * 1000: 3})
    assert len(cfg.notes) == 3 and all(len(n) < 120 for n in cfg.notes)
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.from_dict({VAST: 1}, strict=True)


def test_the_command_line_names_the_setting(tmp_path, capsys):
    from cnnbuilder.cli import main
    from cnnbuilder.core.project import Project, save_project

    project = Project(graph=tiny_graph(), name="tiny", training=TINY_CFG.to_dict())
    save_project(project, tmp_path / "p.json")
    for args, needle in ((["--lr", "1" * 400], "bad setting lr: must be a finite number (got inf)"),
                         (["--epochs", "9" * 400], "bad setting epochs: must be at most 100000 (got a number with "
                                                   "400 digits)"),
                         (["--seed", "-" + "9" * 400], "bad setting seed: must be at least 0 (got a negative number"),
                         (["--grad-clip", "1e400"], "bad setting grad_clip: must be a finite number")):
        assert main(["train", str(tmp_path / "p.json"), *args]) == 1
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
    # A hand-edited file: defaults, with notes naming the settings.
    project.training = {**TINY_CFG.to_dict(), "lr": HUGE, "epochs": -HUGE}
    save_project(project, tmp_path / "q.json")
    assert main(["train", str(tmp_path / "q.json"), "--epochs", "1", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: project file: lr: must be at most 100 (got a number with 401 digits)" in err


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(10**300, 10**5000).map(lambda v: v * 10**4000)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
    | st.sampled_from(["1" * 5000, "1e400", "-inf", "nan", "0x10", "3", "1.5", "true"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=300 * SCALE, deadline=None)
@given(key=st.sampled_from(sorted(CHECKS)), value=values)
def test_fuzz_any_value_is_a_value_or_a_message(key, value):
    try:
        strict = TrainConfig.from_dict({key: value}, strict=True)
    except ConfigError as exc:
        text = str(exc)
        assert text.startswith(f"{key}: ") and "\n" not in text and len(text) < 200
        loose = TrainConfig.from_dict({key: value})
        assert getattr(loose, key) == getattr(TrainConfig(), key) and len(loose.notes) == 1
    else:
        assert TrainConfig.from_dict(strict.to_dict(), strict=True) == strict  # a kept value is a valid one
