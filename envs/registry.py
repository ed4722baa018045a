"""Gymnasium registration of the task families under the ``rl_alphamaml/`` namespace.

``import envs`` registers every family (idempotently). :func:`make` is ``gymnasium.make`` that
also accepts the short id (``"HalfCheetahVel-v0"``) and fails with one clear message for an id
that is not one of ours.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

import gymnasium

__all__ = [
    "FAMILY_IDS",
    "NAMESPACE",
    "UnknownEnvError",
    "family_class",
    "horizon_of",
    "make",
    "make_unwrapped",
    "register_families",
    "resolve_id",
]

NAMESPACE = "rl_alphamaml"

#: short id -> (entry point, horizon). Horizons follow MAML-RL [1]: 200 for locomotion,
#: 100 for 2-D navigation.
_FAMILIES: dict[str, tuple[str, int]] = {
    "HalfCheetahVel-v0": ("envs.half_cheetah:HalfCheetahVelEnv", 200),
    "HalfCheetahDir-v0": ("envs.half_cheetah:HalfCheetahDirEnv", 200),
    "HalfCheetahRandParams-v0": ("envs.half_cheetah:HalfCheetahRandParamsEnv", 200),
    "AntVel-v0": ("envs.ant:AntVelEnv", 200),
    "AntDir-v0": ("envs.ant:AntDirEnv", 200),
    "AntDir2D-v0": ("envs.ant:AntDir2DEnv", 200),
    "AntGoal-v0": ("envs.ant:AntGoalEnv", 200),
    "Navigation2D-v0": ("envs.navigation:Navigation2DEnv", 100),
    "Navigation2DSparse-v0": ("envs.navigation:Navigation2DSparseEnv", 100),
}

#: every registered id, ``rl_alphamaml/<Family>-v0``
FAMILY_IDS: tuple[str, ...] = tuple(f"{NAMESPACE}/{name}" for name in _FAMILIES)


class UnknownEnvError(ValueError):
    """An environment id that is not one of the registered task families."""


def register_families() -> None:
    """Register every family with gymnasium (a no-op for ids already registered)."""
    for name, (entry_point, horizon) in _FAMILIES.items():
        env_id = f"{NAMESPACE}/{name}"
        if env_id not in gymnasium.registry:
            # No passive checker: it marks its first reset as done before calling it, so after a first reset
            # that raised (an invalid task) the next step fails inside it with a TypeError. Every family passes
            # gymnasium's and stable-baselines3's full check_env in the tests instead.
            gymnasium.register(id=env_id, entry_point=entry_point, max_episode_steps=horizon,
                               disable_env_checker=True)


def resolve_id(env_id: str) -> str:
    """Return the full registered id for ``env_id`` (full or short form), or raise.

    Raises:
        UnknownEnvError: the id is not a task family of this package; the message lists the
            families and the closest match.
    """
    if not isinstance(env_id, str):
        raise UnknownEnvError(f"environment id must be a string, got {env_id!r}")
    full = env_id if "/" in env_id else f"{NAMESPACE}/{env_id}"
    if full in FAMILY_IDS:
        return full
    close = difflib.get_close_matches(full, FAMILY_IDS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownEnvError(f"unknown task family {env_id!r}.{hint} Known families: {', '.join(FAMILY_IDS)}")


def horizon_of(env_id: str) -> int:
    """The registered horizon (``max_episode_steps``) of a family."""
    return _FAMILIES[resolve_id(env_id).split("/", 1)[1]][1]


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make`` for a task family; accepts ``"HalfCheetahVel-v0"`` or the full id.

    Keyword arguments go to the family's constructor (e.g. ``task=``, ``render_mode=``, ``low=``)
    or to ``gymnasium.make`` (e.g. ``max_episode_steps=``).
    """
    register_families()
    return gymnasium.make(resolve_id(env_id), **kwargs)


def family_class(env_id: str) -> type:
    """The environment class of a family (its entry point)."""
    module_name, class_name = _FAMILIES[resolve_id(env_id).split("/", 1)[1]][0].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_unwrapped(env_id: str, **kwargs: Any) -> Any:
    """The family's environment instantiated directly, without gymnasium's wrappers."""
    return family_class(env_id)(**kwargs)
