"""Reproducible random streams: one config seed drives everything.

Every consumer of randomness draws from a stream named by the seed, a purpose and usually the
iteration, e.g. ``rng(seed, "train", 17)``. Iteration ``i`` therefore sees the same tasks and noise
whether the run went straight through or was resumed from a checkpoint, with no random-generator
state to save, and streams never depend on the order in which parts of the code ask for numbers.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from rl_alphamaml.fields import MAX_SEED as MAX_SEED  # the largest config seed (re-exported)

#: the largest seed of an evaluation's streams (``evaluate --seed``; by default :func:`evaluation_seed`)
MAX_STREAM_SEED = 2**63 - 1
#: how far the default evaluation seed is from the config seed: held-out tasks never meet training's streams
EVALUATION_OFFSET = 1_000_003
#: the stream key of the sampling phases of an RL evaluation, ``(seed, EVALUATION_SAMPLING, j)`` at step j
EVALUATION_SAMPLING = 7


def evaluation_seed(config_seed: int) -> int:
    """The default seed of ``evaluate`` and ``compare`` for a run of ``config_seed``."""
    return config_seed + EVALUATION_OFFSET


def _key(part: int | str) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode())
    if part < 0:
        raise ValueError(f"stream keys must be non-negative, got {part}")
    return part


def rng(seed: int, *stream: int | str) -> np.random.Generator:
    """A numpy Generator for the stream ``(seed, *stream)``."""
    return np.random.default_rng([_key(seed), *(_key(s) for s in stream)])


def torch_generator(seed: int, *stream: int | str) -> torch.Generator:
    """A torch CPU Generator for the stream ``(seed, *stream)``."""
    return torch.Generator().manual_seed(int(rng(seed, *stream).integers(2**63 - 1)))
