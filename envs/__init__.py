"""Parametric task families for meta-RL, as Gymnasium environments on the official MuJoCo bindings.

``import envs`` registers the families under the ``rl_alphamaml/`` namespace:

=================================  ==========================  ==============  =======
id                                 task                        distribution    horizon
=================================  ==========================  ==============  =======
rl_alphamaml/HalfCheetahVel-v0     target velocity v*          U[0, 2]         200
rl_alphamaml/HalfCheetahDir-v0     direction d                 {−1, +1}        200
rl_alphamaml/HalfCheetahRandParams-v0  mass/damping/friction   log-uniform     200
rl_alphamaml/AntVel-v0             target velocity v*          U[0, 3]         200
rl_alphamaml/AntDir-v0             direction d                 {−1, +1}        200
rl_alphamaml/AntDir2D-v0           direction angle θ           U[0, 2π)        200
rl_alphamaml/AntGoal-v0            goal position g             U[−3, 3]²       200
rl_alphamaml/Navigation2D-v0       goal position g             U[−0.5, 0.5]²   100
rl_alphamaml/Navigation2DSparse-v0 goal position g             U[−0.5, 0.5]²   100
rl_alphamaml/MetaWorldML1-v0       a goal of one class         50 train goals  500
rl_alphamaml/MetaWorldML10-v0      a class and a goal          10 train cls.   500
rl_alphamaml/MetaWorldML45-v0      a class and a goal          45 train cls.   500
=================================  ==========================  ==============  =======

The conventions (rewards, distributions, horizons) are those of MAML-RL [1] and
its PyTorch reproduction pytorch-maml-rl; the robots are gymnasium's v5 MuJoCo models, and the Ant families
also run on the Ant the MAML paper ran (``model="maml2017"``, :mod:`envs.ant`). Meta-World's meta-learning
benchmarks [2] (:mod:`envs.metaworld`) need the optional metaworld package (``pip install -e ".[metaworld]"``),
imported only when one of them is made; they evaluate on the benchmark's held-out test split
(``sample_held_out_tasks``). See ``docs/envs.md``. This package imports only gymnasium, mujoco and numpy (and
metaworld for its families).

Example::

    import numpy as np, envs
    env = envs.make("rl_alphamaml/HalfCheetahVel-v0")          # a gymnasium.Env
    tasks = env.unwrapped.sample_tasks(40, np.random.default_rng(0))
    obs, info = env.reset(seed=0, options={"task": tasks[0]})    # info["task"] == tasks[0]

    benv = envs.BatchedEnv("rl_alphamaml/HalfCheetahVel-v0", n_slots=800)
    obs = benv.reset(tasks, seeds=0)                              # 20 slots per task
    obs, reward, terminated, truncated = benv.step(np.zeros((800, benv.act_dim)))

A family of your own is a subclass of one of these classes registered with :func:`register_family`
(``examples/custom_task_family.py``).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Yu, Quillen, He, Julian, Hausman, Finn & Levine, "Meta-World: A Benchmark and Evaluation for Multi-Task
        and Meta Reinforcement Learning", CoRL 2019. https://arxiv.org/abs/1910.10897
"""

from envs.ant import AntDir2DEnv, AntDirEnv, AntGoalEnv, AntVelEnv
from envs.base import MissingDependencyError, TaskFamily, load_model
from envs.batched import BACKENDS, BackendError, BatchedEnv, BatchStep, resolve_backend
from envs.half_cheetah import HalfCheetahDirEnv, HalfCheetahRandParamsEnv, HalfCheetahVelEnv
from envs.metaworld import MetaWorldML1Env, MetaWorldML10Env, MetaWorldML45Env
from envs.navigation import Navigation2DEnv, Navigation2DSparseEnv
from envs.registry import (
    FAMILY_IDS,
    NAMESPACE,
    UnknownEnvError,
    family_class,
    horizon_of,
    make,
    make_unwrapped,
    register_families,
    register_family,
    resolve_id,
)
from envs.tasks import (
    Direction2DTask,
    DirectionTask,
    DynamicsTask,
    GoalTask,
    MetaWorldTask,
    Task,
    TaskError,
    VelocityTask,
    task_from_dict,
    task_from_json,
)

register_families()

__all__ = [
    "BACKENDS",
    "FAMILY_IDS",
    "NAMESPACE",
    "AntDir2DEnv",
    "AntDirEnv",
    "AntGoalEnv",
    "AntVelEnv",
    "BackendError",
    "BatchStep",
    "BatchedEnv",
    "Direction2DTask",
    "DirectionTask",
    "DynamicsTask",
    "GoalTask",
    "HalfCheetahDirEnv",
    "HalfCheetahRandParamsEnv",
    "HalfCheetahVelEnv",
    "MetaWorldML1Env",
    "MetaWorldML10Env",
    "MetaWorldML45Env",
    "MetaWorldTask",
    "MissingDependencyError",
    "Navigation2DEnv",
    "Navigation2DSparseEnv",
    "Task",
    "TaskError",
    "TaskFamily",
    "UnknownEnvError",
    "VelocityTask",
    "family_class",
    "horizon_of",
    "load_model",
    "make",
    "make_unwrapped",
    "register_families",
    "register_family",
    "resolve_backend",
    "resolve_id",
    "task_from_dict",
    "task_from_json",
]
