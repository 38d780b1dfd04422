"""Training settings have one schema (issue 9, section 4): the form is built from the core's
SETTINGS, shows and keeps every value the core accepts exactly, and never writes a clamped value
back into the project."""

from __future__ import annotations

from dataclasses import fields

from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core.training.config import SETTINGS, TrainConfig
from tests.fuzz import fuzz_settings


def test_every_setting_is_described_once_and_fits_its_editor():
    assert set(SETTINGS) == {f.name for f in fields(TrainConfig)} - {"notes"}
    for s in SETTINGS.values():
        if s.kind == "int":
            assert -(2**31) <= s.lo and s.hi <= 2**31 - 1, s.name  # a QSpinBox holds them all
        if s.group:
            assert s.label, s.name


def _accepted(s):
    if s.kind == "int":
        return st.integers(int(s.lo), int(s.hi))
    if s.kind == "float":
        return st.floats(s.lo, s.hi, allow_nan=False, allow_infinity=False)
    if s.kind == "bool":
        return st.booleans()
    if s.kind == "choice":
        return st.sampled_from(list(s.choices))
    if s.kind == "path":
        return st.sampled_from(["", "/data/x", "relative/dir"])
    return st.sampled_from(["auto", "cpu", "cuda:1"])


SHOWN = [s for s in SETTINGS.values() if s.group]


@given(data=st.data())
@fuzz_settings(default=25, long=400)
def test_values_the_core_accepts_round_trip_exactly_through_the_form(window, data):
    panel = window.training_panel
    chosen = {s.name: data.draw(_accepted(s), label=s.name) for s in SHOWN if data.draw(st.booleans())}
    cfg = TrainConfig.from_dict(chosen, strict=True)  # the core accepts them
    window.document.set_training(cfg.to_dict())
    assert panel.config().to_dict() == cfg.to_dict()
    # Editing any other field writes back every value as it was, never a clamped copy.
    panel._fields["epochs"][2](cfg.epochs + 1 if cfg.epochs < 100_000 else 1)
    panel.settings_form.edited.emit()
    stored = dict(window.document.project.training)
    for name, value in cfg.to_dict().items():
        if name != "epochs":
            assert stored[name] == value, name


def test_the_values_the_testers_saw_clamped_are_kept(window):
    panel = window.training_panel
    window.document.set_training({"lr": 1e-7, "batch_size": 100000, "weight_decay": 2.0})
    assert panel._fields["lr"][0].text() == "1e-07"
    panel._fields["hflip"][0].setChecked(True)  # any other edit
    t = window.document.project.training
    assert (t["lr"], t["batch_size"], t["weight_decay"]) == (1e-7, 100000, 2.0)


def test_log_fields_step_along_1_2_5(window):
    lr = window.training_panel._fields["lr"][0]
    lr.setValue(0.001)
    lr.stepBy(1)
    assert lr.value() == 0.002
    lr.stepBy(2)
    assert lr.value() == 0.01
    lr.stepBy(-1)
    assert lr.value() == 0.005
