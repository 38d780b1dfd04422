"""Running `cnnbuilder train` under torchrun: torch.distributed's process group, not our own.

torchrun starts one process per GPU (or per CPU slot) and tells each who it is through environment
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). `setup` joins the process
group from them (NCCL on CUDA, gloo on the CPU); the engine then asks `world()` and, when there is
more than one process, shards the data by rank, wraps the model in DistributedDataParallel and
all-reduces its metrics. Without torchrun nothing here does anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class DistributedError(RuntimeError):
    """The torchrun environment is unusable; the message says which variable or setting."""


@dataclass(frozen=True)
class TorchrunEnv:
    rank: int
    world_size: int
    local_rank: int


def torchrun_env(environ=None) -> TorchrunEnv | None:
    """The process's place in a torchrun job, or None when not started by torchrun (or alone in it)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env and "RANK" not in env:
        return None
    values = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        raw = env.get(name, "0" if name == "LOCAL_RANK" else None)
        try:
            values[name] = int(raw)
        except (TypeError, ValueError):
            raise DistributedError(f"the torchrun variable {name} is {raw!r}, expected a whole number "
                                   "(start with `torchrun --nproc_per_node=N`)") from None
    rank, size, local = values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"]
    if size < 1 or not 0 <= rank < size or local < 0:
        raise DistributedError(f"inconsistent torchrun variables RANK={rank}, WORLD_SIZE={size}, LOCAL_RANK={local}")
    if size == 1:
        return None  # one process: train as usual
    return TorchrunEnv(rank, size, local)


def setup(env: TorchrunEnv, device: str) -> str:
    """Join the process group; returns the device setting this process trains on.

    Each process of a node takes the GPU of its LOCAL_RANK (NCCL); without CUDA, or with
    `--device cpu`, all use the CPU (gloo)."""
    import torch
    import torch.distributed as dist

    device = (device or "auto").lower()
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if not torch.cuda.is_available():
            raise DistributedError("CUDA was requested but no CUDA GPU is available: use --device cpu")
        count = torch.cuda.device_count()
        if env.local_rank >= count:
            raise DistributedError(f"local rank {env.local_rank} has no GPU: this node has {count}; "
                                   f"start at most {count} processes per node (--nproc_per_node)")
        torch.cuda.set_device(env.local_rank)
        device, backend = f"cuda:{env.local_rank}", "nccl"
    elif device in ("auto", "cpu"):
        device, backend = "cpu", "gloo"
    else:
        raise DistributedError(f"--device {device} cannot be used under torchrun: use cuda or cpu")
    if not dist.is_available():
        raise DistributedError("this PyTorch build has no torch.distributed")
    try:
        dist.init_process_group(backend, device_id=torch.device(device) if cuda else None)
    except (RuntimeError, ValueError) as exc:  # a rendezvous that never completes, a bad address
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DistributedError(f"cannot join the torchrun process group ({backend}): {first[:300]}") from None
    return device


def teardown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank, number of processes) of the current process group; (0, 1) without one."""
    try:
        import torch.distributed as dist
    except ImportError:
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_sum(tensor):
    """Sum over all processes, in place (a no-op alone)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def is_comm_error(exc: BaseException) -> bool:
    """A collective failed, usually because another process of the job stopped."""
    import torch.distributed as dist

    kinds = tuple(k for k in (getattr(dist, "DistError", None),) if k is not None)
    text = str(exc).lower()
    return (bool(kinds) and isinstance(exc, kinds)) or any(
        s in text for s in ("connection closed by peer", "connection reset", "broken pipe", "nccl error",
                            "gloo", "timed out"))
