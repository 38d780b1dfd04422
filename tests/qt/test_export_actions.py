"""File ▸ Export ▸ Training Script… and Notebook… write what the core exporters write, with the
Training panel's settings; failures show a dialog that names the file."""

from __future__ import annotations

import json

from cnnbuilder.core.export import generate_script


def test_menu_exports_script_and_notebook(window, tmp_path):
    menu = window.export_menu
    assert [a.text() for a in menu.actions()] == ["Training &Script…", "&Notebook…", "&ONNX…"]
    window.training_panel._fields["epochs"][2](7)  # a setting changed in the panel, not yet saved
    window.answers["save_path"] = str(tmp_path / "train.py")
    window.export_actions.script.trigger()
    text = (tmp_path / "train.py").read_text()
    assert text == generate_script(window.document.project, window.training_panel.config())
    assert "'epochs': 7" in text
    window.answers["save_path"] = str(tmp_path / "train.ipynb")
    window.export_actions.notebook.trigger()
    assert json.loads((tmp_path / "train.ipynb").read_text())["nbformat"] == 4
    assert not window.errors


def test_unwritable_target_and_unfit_model_show_a_dialog(make_window, tmp_path):
    window = make_window("mnist_cnn")
    target = tmp_path / "no" / "such" / "train.py"
    assert not window.export_actions.export_script(target)
    assert window.errors and str(target) in window.errors[-1][1]
    w2 = make_window("resnet_small")
    assert not w2.export_actions.export_notebook(tmp_path / "x.ipynb")
    assert "does not fit" in w2.errors[-1][1] and not (tmp_path / "x.ipynb").exists()
