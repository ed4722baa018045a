"""Where the learners compute: ``train.device`` (``cpu``, ``cuda``, or ``auto`` = cuda when there is one).

Every kind puts its model, meta-parameters and learning on the device; RL's simulators always step on the
CPU in float32 (the sampler brings the parameters over once per phase, the trajectories come back in one
transfer, :meth:`agents.sampler.Episodes.to`). Checkpoints hold CPU tensors and load on either device.
"""

from __future__ import annotations

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
