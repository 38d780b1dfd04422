"""Which device to train on, and what to call it in the UI."""

from __future__ import annotations

import os
import shutil
import sys

# Where an installed NVIDIA driver shows itself without asking CUDA (which a CPU-only torch cannot).
_NVIDIA_MARKERS = ("/proc/driver/nvidia/version", "/dev/nvidia0")
PYTORCH_INSTALL_URL = "https://pytorch.org/get-started/locally/"


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except Exception:  # older builds raise instead of answering False
        return False


def resolve_device(pref: str = "auto"):
    """auto: CUDA, then Apple MPS, then CPU. An explicit choice that is missing is an error."""
    import torch

    pref = (pref or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was requested but no CUDA GPU is available "
                              "(no NVIDIA driver, or a CPU-only PyTorch build): choose auto or cpu")
        index = int(pref[5:]) if pref.startswith("cuda:") else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(f"{pref} was requested but this machine has {count} CUDA GPU(s)")
        return torch.device("cuda", index)
    if pref == "mps":
        if not _mps_available():
            raise DeviceError("Apple MPS was requested but is not available on this machine: choose auto or cpu")
        return torch.device("mps")
    raise DeviceError(f"unknown device {pref!r}: use auto, cpu, cuda, cuda:N or mps")


def device_name(device) -> str:
    """"NVIDIA GeForce RTX 4090", "Apple GPU (MPS)" or "CPU"."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        try:
            return torch.cuda.get_device_name(device.index or 0)
        except Exception:
            return "CUDA GPU"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return "CPU"


def available_devices() -> list[tuple[str, str]]:
    """(setting, label) pairs for a device menu, "auto" first, labelled with what it picks."""
    import torch

    out: list[tuple[str, str]] = []
    auto = resolve_device("auto")
    out.append(("auto", f"Auto ({device_name(auto)})"))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append((f"cuda:{i}", f"GPU {i}: {device_name(torch.device('cuda', i))}"))
    if _mps_available():
        out.append(("mps", "Apple GPU (MPS)"))
    out.append(("cpu", "CPU"))
    return out


def nvidia_gpu_present() -> bool:
    """An NVIDIA driver is installed (Linux: loaded; Windows: nvidia-smi, which the driver puts on PATH)."""
    return any(os.path.exists(p) for p in _NVIDIA_MARKERS) or shutil.which("nvidia-smi") is not None


def device_notes() -> list[str]:
    """Why an NVIDIA GPU this machine has is missing from the device list, and what to do about it."""
    import torch

    if torch.cuda.is_available() or not nvidia_gpu_present():
        return []
    if torch.version.cuda is None:
        if getattr(sys, "frozen", False):  # the downloadable app: it carries the torch it was built with
            fix = "download cnnbuilder's CUDA build to train on it"
        else:
            fix = f"install a CUDA build of PyTorch ({PYTORCH_INSTALL_URL}) to train on it"
        return [f"An NVIDIA GPU is present, but this PyTorch {torch.__version__} is a CPU-only build: {fix}"]
    return [f"An NVIDIA GPU is present, but PyTorch (built for CUDA {torch.version.cuda}) cannot use it: "
            f"update the NVIDIA driver to one that supports CUDA {torch.version.cuda}, "
            "and check that CUDA_VISIBLE_DEVICES does not hide the GPU"]


def amp_enabled(requested: bool, device) -> bool:
    """Mixed precision only on CUDA: CPU autocast (bfloat16) is slower than float32 on most
    desktop CPUs and MPS autocast is not dependable across torch versions."""
    import torch

    return bool(requested) and torch.device(device).type == "cuda"
