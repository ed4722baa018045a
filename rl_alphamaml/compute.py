"""Where and how the learners compute: ``train.device`` (``cpu``, ``cuda``, or ``auto`` = cuda when there is one),
thread pools whose torch ops run single-threaded, and glibc's memory reuse — usable by every kind.

Every kind puts its model, meta-parameters and learning on the device; RL's simulators always step on the
CPU in float32 (the sampler brings the parameters over once per phase, the trajectories come back in one
transfer, :meth:`agents.sampler.Episodes.to`). Checkpoints hold CPU tensors and load on either device.
"""

from __future__ import annotations

import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from rl_alphamaml.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (an error when torch sees no CUDA device) or ``auto`` (cuda when available)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device: cuda, but torch sees no CUDA device here (torch "
                        f"{torch.__version__}); use train.device=cpu or auto")
    if name not in ("cpu", "cuda"):
        raise UserError(f"train.device: must be cpu, cuda or auto, got {name!r}")
    return torch.device(name)


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def thread_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``workers`` threads whose torch ops run single-threaded.

    Passes of different tasks are independent, so two threads on two cores need no synchronisation
    inside an op — unlike torch's OpenMP threads, whose spin-waits at every op make small convolutions
    crawl when another process holds a core (measured in ``benchmarks/omniglot_speed.py``).
    """
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(
                workers, thread_name_prefix="rl-alphamaml-pass", initializer=torch.set_num_threads, initargs=(1,)
            )
        return _POOLS[workers]


_MEMORY_REUSED = False


def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process: no ``mmap`` for large blocks, no trimming.

    PyTorch's CPU allocator hands large tensors to ``malloc``; glibc serves blocks above its mmap
    threshold (at most 32 MiB) with fresh ``mmap`` pages and returns them on ``free``, so every pass
    page-faults its activations back in: about 10^5 faults per 5-way 1-shot meta-iteration on this CPU,
    many more for a 32-task pass. ``mallopt(M_MMAP_MAX, 0)`` and a huge
    ``M_TRIM_THRESHOLD`` let freed blocks be reused instead (the resident size then stays at its peak).
    Process-wide; returns whether it took effect (False off glibc).
    """
    global _MEMORY_REUSED
    if _MEMORY_REUSED:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
        ok = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
        libc.mallopt(m_top_pad, 64 << 20)
    except (OSError, AttributeError):
        return False
    _MEMORY_REUSED = bool(ok)
    return _MEMORY_REUSED
