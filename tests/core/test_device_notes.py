"""The device list says when an NVIDIA GPU is present but this PyTorch cannot use it, and what to do:
detection is monkeypatched, so these run on any machine."""

from __future__ import annotations

import sys

import pytest
import torch

from cnnbuilder.cli import main
from cnnbuilder.core.training import devices

from ..conftest import EXAMPLES


@pytest.fixture
def gpu(monkeypatch, tmp_path):
    """Pretend: an NVIDIA driver is loaded, CUDA is unusable, torch is the build `cuda` names (None: CPU-only)."""
    marker = tmp_path / "nvidia-version"
    marker.write_text("NVRM version: test\n")

    def setup(present: bool = True, cuda: str | None = None, available: bool = False):
        monkeypatch.setattr(devices, "_NVIDIA_MARKERS", (str(marker if present else tmp_path / "none"),))
        monkeypatch.setattr(devices.shutil, "which", lambda name: None)
        monkeypatch.setattr(torch.version, "cuda", cuda)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)

    return setup


def test_no_nvidia_gpu_no_note(gpu):
    gpu(present=False)
    assert not devices.nvidia_gpu_present()
    assert devices.device_notes() == []


def test_cpu_only_torch_with_an_nvidia_gpu_says_to_install_cuda_torch(gpu):
    gpu(cuda=None)
    assert devices.nvidia_gpu_present()
    [note] = devices.device_notes()
    assert "NVIDIA GPU is present" in note and "CPU-only" in note
    assert devices.PYTORCH_INSTALL_URL in note  # pip users: install a CUDA PyTorch


def test_the_bundled_app_says_to_download_its_cuda_build(gpu, monkeypatch):
    gpu(cuda=None)
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # what PyInstaller sets in the bundle
    [note] = devices.device_notes()
    assert "CPU-only" in note and "download cnnbuilder's CUDA build" in note


def test_cuda_torch_that_cannot_reach_the_gpu_says_to_update_the_driver(gpu):
    gpu(cuda="12.8")
    [note] = devices.device_notes()
    assert "CUDA 12.8" in note and "driver" in note


def test_usable_cuda_needs_no_note(gpu):
    gpu(cuda="12.8", available=True)
    assert devices.device_notes() == []


def test_nvidia_smi_on_path_counts_as_a_gpu(gpu, monkeypatch):
    gpu(present=False)
    monkeypatch.setattr(devices.shutil, "which", lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None)
    assert devices.nvidia_gpu_present()


def test_cli_devices_lists_choices_and_the_note(gpu, capsys):
    gpu(cuda=None)
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("auto ") and "\ncpu " in out
    assert "note: An NVIDIA GPU is present" in out

    gpu(present=False)
    assert main(["devices"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_cli_train_prints_the_note_unless_cpu_was_chosen(gpu, capsys, tmp_path):
    gpu(cuda=None)
    # Data that is not there stops the run at once, after the note.
    missing = [str(EXAMPLES / "mnist_cnn.json"), "--dataset", "mnist", "--data-root", str(tmp_path), "--quiet"]
    assert main(["train", *missing, "--device", "auto"]) == 2
    err = capsys.readouterr().err
    assert "note: An NVIDIA GPU is present" in err and "MNIST" in err
    assert main(["train", *missing, "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert "note: An NVIDIA GPU is present" in err and "CUDA was requested" in err
    assert main(["train", *missing, "--device", "cpu"]) == 2  # the user chose the CPU: nothing to explain
    err = capsys.readouterr().err
    assert "note:" not in err and "MNIST" in err
