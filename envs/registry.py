"""Gymnasium registration of the task families under the ``rl_alphamaml/`` namespace.

``import envs`` registers every family (idempotently). :func:`make` is ``gymnasium.make`` that
also accepts the short id (``"HalfCheetahVel-v0"``) and fails with one clear message for an id
that is not one of ours. :func:`register_family` adds a family of your own: after it, every function
here, :class:`envs.BatchedEnv` and the RL learner (``env.id``) take its id like a built-in one.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Yu, Quillen, He, Julian, Hausman, Finn & Levine, "Meta-World: A Benchmark and Evaluation for Multi-Task
        and Meta Reinforcement Learning", CoRL 2019. https://arxiv.org/abs/1910.10897
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
    "register_family",
    "resolve_id",
]

NAMESPACE = "rl_alphamaml"

#: short id -> (entry point, horizon). Horizons follow MAML-RL [1]: 200 for locomotion,
#: 100 for 2-D navigation; Meta-World's [2] is its max_path_length, 500 (its families need the metaworld extra,
#: which envs.metaworld imports only when one is made).
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
    "MetaWorldML1-v0": ("envs.metaworld:MetaWorldML1Env", 500),
    "MetaWorldML10-v0": ("envs.metaworld:MetaWorldML10Env", 500),
    "MetaWorldML45-v0": ("envs.metaworld:MetaWorldML45Env", 500),
}

#: the built-in families' ids, ``rl_alphamaml/<Family>-v0`` (families added by :func:`register_family` are not
#: listed here; :func:`resolve_id` knows both)
FAMILY_IDS: tuple[str, ...] = tuple(f"{NAMESPACE}/{name}" for name in _FAMILIES)

#: full id -> (environment class, horizon) of the families added by :func:`register_family`
_USER_FAMILIES: dict[str, tuple[type, int]] = {}


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
    known = (*FAMILY_IDS, *_USER_FAMILIES)
    if full in known:
        return full
    close = difflib.get_close_matches(full, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownEnvError(f"unknown task family {env_id!r}.{hint} Known families: {', '.join(known)}")


def horizon_of(env_id: str) -> int:
    """The registered horizon (``max_episode_steps``) of a family."""
    full = resolve_id(env_id)
    if full in _USER_FAMILIES:
        return _USER_FAMILIES[full][1]
    return _FAMILIES[full.split("/", 1)[1]][1]


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make`` for a task family; accepts ``"HalfCheetahVel-v0"`` or the full id.

    Keyword arguments go to the family's constructor (e.g. ``task=``, ``render_mode=``, ``low=``)
    or to ``gymnasium.make`` (e.g. ``max_episode_steps=``).
    """
    register_families()
    return gymnasium.make(resolve_id(env_id), **kwargs)


def family_class(env_id: str) -> type:
    """The environment class of a family (its entry point)."""
    full = resolve_id(env_id)
    if full in _USER_FAMILIES:
        return _USER_FAMILIES[full][0]
    module_name, class_name = _FAMILIES[full.split("/", 1)[1]][0].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_unwrapped(env_id: str, **kwargs: Any) -> Any:
    """The family's environment instantiated directly, without gymnasium's wrappers."""
    return family_class(env_id)(**kwargs)


def register_family(env_id: str, env_class: type, max_episode_steps: int) -> str:
    """Register a task family of your own; return its full id.

    ``env_class`` is a :class:`gymnasium.Env` that is also a :class:`envs.base.TaskFamily` (``sample_tasks``,
    ``set_task``, ``task_params``, …). ``env_id`` is a short id (``"RingNavigation-v0"``, registered as
    ``rl_alphamaml/RingNavigation-v0``) or a full one with your own namespace (``"mylab/RingNavigation-v0"``);
    ``max_episode_steps`` is the family's horizon. Afterwards :func:`make`, :func:`resolve_id`,
    :func:`horizon_of`, :func:`family_class`, :class:`envs.BatchedEnv` and the RL learner's ``env.id`` take
    the id like a built-in family's. Meta-training steps the family in a :class:`envs.BatchedEnv`: all slots
    at once through vectorised kernels for a subclass of :class:`envs.mujoco_family.MujocoFamily` (a MuJoCo
    robot) or of :class:`envs.Navigation2DEnv` (numpy kernels ``initial_state``, ``observe``, ``transition``,
    ``terminated``), else one environment of the class per slot (its ``"gymnasium"`` backend); ``envs.make``
    and stable-baselines3 take any such environment.

    The registration lives in this process: a program (or a Ray worker, ``sampler.backend: ray``) that
    should know the family must import the module that registers it. Registering an id again replaces its
    class (e.g. a class redefined in a notebook); a built-in family's id cannot be taken.

    Example::

        class RingNavigationEnv(envs.Navigation2DEnv): ...        # examples/custom_task_family.py
        envs.register_family("RingNavigation-v0", RingNavigationEnv, max_episode_steps=100)
        benv = envs.BatchedEnv("RingNavigation-v0", n_slots=40)

    Raises:
        ValueError: the id is a built-in family's, malformed or registered by other code, the class is not a
            task family, or the horizon is not a positive integer.
    """
    from envs.base import TaskFamily  # here, not at the top: the registry is imported before the families

    if not isinstance(env_id, str) or env_id.count("/") > 1 or not env_id.strip("/") or env_id != env_id.strip():
        raise ValueError(f"env_id must be 'Name-v0' or 'namespace/Name-v0', got {env_id!r}")
    full = env_id if "/" in env_id else f"{NAMESPACE}/{env_id}"
    if full in FAMILY_IDS:
        raise ValueError(f"{full!r} is a built-in family; register yours under another name")
    if not (isinstance(env_class, type) and issubclass(env_class, gymnasium.Env)
            and issubclass(env_class, TaskFamily)):
        raise ValueError(f"env_class must be a gymnasium.Env subclass that is also an envs.base.TaskFamily "
                         f"(e.g. derived from envs.Navigation2DEnv), got {env_class!r}")
    if isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be a positive integer, got {max_episode_steps!r}")
    if full in _USER_FAMILIES:
        del gymnasium.registry[full]  # replacing our own earlier registration, without gymnasium's warning
    elif full in gymnasium.registry:
        raise ValueError(f"{full!r} is already registered with gymnasium by something else")
    creator: Any = env_class  # a class is a valid entry point; gymnasium's EnvCreator protocol types only **kwargs
    gymnasium.register(id=full, entry_point=creator, max_episode_steps=max_episode_steps, disable_env_checker=True)
    _USER_FAMILIES[full] = (env_class, max_episode_steps)
    return full
