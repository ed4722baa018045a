"""Tasks: JSON round trips, the family task API, distributions and clear errors for bad tasks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import envs
from envs import (
    Direction2DTask,
    DirectionTask,
    DynamicsTask,
    GoalTask,
    Task,
    TaskError,
    VelocityTask,
    task_from_dict,
    task_from_json,
)


class _Families(dict):
    """Each family's environment, made on first use (a Meta-World one only where metaworld is installed)."""

    def __missing__(self, env_id: str) -> object:
        self[env_id] = envs.make_unwrapped(env_id)
        return self[env_id]


@pytest.fixture(scope="module")
def families() -> dict[str, object]:
    made = _Families()
    yield made
    for env in made.values():
        env.close()


@pytest.mark.parametrize("env_id", envs.FAMILY_IDS)
def test_sampled_tasks_round_trip_through_json(families: dict, env_id: str) -> None:
    family = families[env_id]
    tasks = family.sample_tasks(7, np.random.default_rng(123))
    assert len(tasks) == 7 and all(isinstance(t, family.task_type) for t in tasks)
    for task in tasks:
        text = json.dumps(task.to_dict())
        back = task_from_dict(json.loads(text))
        assert back == task and type(back) is type(task)
        assert task_from_json(task.to_json()) == task
        assert type(task).from_dict(task.to_dict()) == task
        assert family.validate_task(json.loads(text)) == task  # dict form accepted by the family
        hash(task)  # frozen dataclasses are hashable


@pytest.mark.parametrize("env_id", envs.FAMILY_IDS)
def test_sample_tasks_is_reproducible_and_uses_only_the_given_rng(families: dict, env_id: str) -> None:
    family = families[env_id]
    np.random.seed(0)
    a = family.sample_tasks(5, np.random.default_rng(42))
    np.random.seed(1)  # the global RNG must not matter
    b = family.sample_tasks(5, np.random.default_rng(42))
    c = family.sample_tasks(5, np.random.default_rng(43))
    assert a == b and a != c
    assert family.sample_tasks(0, np.random.default_rng(0)) == []
    with pytest.raises(TypeError, match="Generator"):
        family.sample_tasks(3, 0)
    with pytest.raises(ValueError, match="non-negative"):
        family.sample_tasks(-1, np.random.default_rng(0))


def test_task_distributions_match_the_documented_ranges(families: dict) -> None:
    rng = np.random.default_rng(0)
    n = 400

    def sample(name: str) -> list:
        return families[f"rl_alphamaml/{name}"].sample_tasks(n, rng)

    for name, high in (("HalfCheetahVel-v0", 2.0), ("AntVel-v0", 3.0)):
        v = np.array([t.velocity for t in sample(name)])
        assert v.min() >= 0.0 and v.max() <= high
        assert v.min() < 0.1 * high and v.max() > 0.9 * high  # covers the range
        assert abs(v.mean() - high / 2) < 0.1 * high
    for name in ("HalfCheetahDir-v0", "AntDir-v0"):
        d = np.array([t.direction for t in sample(name)])
        assert set(d.tolist()) == {-1, 1} and abs(d.mean()) < 0.2
    angles = np.array([t.angle for t in sample("AntDir2D-v0")])
    assert angles.min() >= 0.0 and angles.max() < 2 * math.pi and angles.max() - angles.min() > 5.5
    for name, half in (("AntGoal-v0", 3.0), ("Navigation2D-v0", 0.5), ("Navigation2DSparse-v0", 0.5)):
        g = np.array([t.goal for t in sample(name)])
        assert g.shape == (n, 2) and np.abs(g).max() <= half and np.abs(g).max() > 0.9 * half
    dyn = sample("HalfCheetahRandParams-v0")
    mass = np.array([t.body_mass_scale for t in dyn])
    damping = np.array([t.dof_damping_scale for t in dyn])
    friction = np.array([t.friction_scale for t in dyn])
    assert mass.shape == (n, 7) and damping.shape == (n, 6)
    # log-uniform: log_b(scale) ~ U[-3, 3]
    for values, base in ((mass, 1.5), (damping, 1.3), (friction, 1.5)):
        u = np.log(values) / np.log(base)
        assert u.min() >= -3 - 1e-9 and u.max() <= 3 + 1e-9 and abs(u.mean()) < 0.3


def test_family_ranges_follow_constructor_arguments() -> None:
    env = envs.make_unwrapped("HalfCheetahVel-v0", low=1.0, high=1.5)
    tasks = env.sample_tasks(50, np.random.default_rng(0))
    assert all(1.0 <= t.velocity <= 1.5 for t in tasks)
    env.set_task(VelocityTask(1.2))
    with pytest.raises(TaskError, match=r"outside the family's range \[1.0, 1.5\]"):
        env.set_task(VelocityTask(0.5))
    with pytest.raises(ValueError, match="low <= high"):
        envs.make_unwrapped("AntVel-v0", low=2.0, high=1.0)


@pytest.mark.parametrize(
    ("env_id", "task", "message"),
    [
        ("HalfCheetahVel-v0", DirectionTask(1), "takes VelocityTask tasks"),
        ("HalfCheetahVel-v0", VelocityTask(2.5), "outside the family's range"),
        ("HalfCheetahVel-v0", VelocityTask(-0.1), "outside the family's range"),
        ("AntVel-v0", VelocityTask(3.01), "outside the family's range"),
        ("AntDir-v0", VelocityTask(1.0), "takes DirectionTask tasks"),
        ("AntDir2D-v0", Direction2DTask(7.0), "outside the family's range"),
        ("AntDir2D-v0", DirectionTask(-1), "takes Direction2DTask tasks"),
        ("AntGoal-v0", GoalTask((0.0, 3.5)), "outside the family's range"),
        ("Navigation2D-v0", GoalTask((0.6, 0.0)), "outside the family's range"),
        ("Navigation2DSparse-v0", VelocityTask(0.1), "takes GoalTask tasks"),
        ("HalfCheetahRandParams-v0", DynamicsTask((1.0,) * 6, (1.0,) * 6), "body_mass_scale needs 7"),
        ("HalfCheetahRandParams-v0", DynamicsTask((1.0,) * 7, (1.0,) * 9), "dof_damping_scale needs 6"),
        ("HalfCheetahRandParams-v0", DynamicsTask((1.0,) * 7, (1.0,) * 6, 4.0), "friction_scale"),
        ("HalfCheetahRandParams-v0", DynamicsTask((1.0,) * 6 + (0.2,), (1.0,) * 6), "body_mass_scale"),
        ("HalfCheetahDir-v0", {"kind": "velocity", "velocity": 1.0}, "takes DirectionTask tasks"),
    ],
)
def test_wrong_family_or_out_of_range_task_is_a_clear_error(env_id: str, task: object, message: str) -> None:
    env = envs.make(env_id)
    with pytest.raises(TaskError, match=message):
        env.unwrapped.set_task(task)
    with pytest.raises(TaskError, match=message):
        env.reset(options={"task": task})
    with pytest.raises(TaskError, match=message):
        envs.make(env_id, task=task)
    env.close()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "speed", "velocity": 1.0}, "unknown task kind 'speed'"),
        ({"velocity": 1.0}, "unknown task kind None"),
        ({"kind": "velocity"}, "bad 'velocity' task"),
        ({"kind": "velocity", "velocity": 1.0, "extra": 2}, "unexpected keys"),
        ({"kind": "velocity", "velocity": "fast"}, "velocity must be a number"),
        ({"kind": "velocity", "velocity": float("nan")}, "velocity must be finite"),
        ({"kind": "direction", "direction": 0}, "direction must be -1 or \\+1"),
        ({"kind": "goal", "goal": [1.0, 2.0, 3.0]}, "goal must have 2 coordinates"),
        ({"kind": "goal", "goal": 1.0}, "goal must be a sequence"),
        ({"kind": "dynamics", "body_mass_scale": [1.0, -1.0], "dof_damping_scale": []}, "positive"),
        ([1.0], "must be a mapping"),
    ],
)
def test_malformed_task_dicts_are_rejected(data: object, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        task_from_dict(data)  # type: ignore[arg-type]


def test_task_values_are_normalised_to_python_types() -> None:
    t = VelocityTask(np.float32(1.5))
    assert type(t.velocity) is float and t.to_dict() == {"kind": "velocity", "velocity": 1.5}
    d = DirectionTask(np.int64(-1))
    assert type(d.direction) is int and d.direction == -1
    g = GoalTask(np.array([0.1, -0.2]))
    assert g.goal == (0.1, -0.2) and isinstance(g.goal, tuple)
    assert json.loads(json.dumps(g.to_dict())) == {"kind": "goal", "goal": [0.1, -0.2]}
    with pytest.raises(TaskError, match="expected a GoalTask dict"):
        GoalTask.from_dict(VelocityTask(1.0).to_dict())
    assert isinstance(Task.from_dict({"kind": "direction2d", "angle": 1.0}), Direction2DTask)
