"""The Meta-World families: the benchmark's own train/test split, task draws, checks, the simulator pool, success.

The generic tests (gymnasium's and SB3's checkers, the task API, batched equals single env) run over
``envs.FAMILY_IDS`` in the other files; these need metaworld (skipped without it) except the last, which checks
the message a user gets without it.
"""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest

import envs
from envs import MetaWorldTask, MissingDependencyError, TaskError
from envs.metaworld import benchmark_tasks, import_metaworld

try:
    import_metaworld()
    MISSING = None
except MissingDependencyError as err:
    MISSING = str(err)

needs_metaworld = pytest.mark.metaworld


def _goals(tasks: list) -> set[tuple[str, tuple[float, ...]]]:
    return {(t.env_name, tuple(float(x) for x in pickle.loads(t.data)["rand_vec"])) for t in tasks}


def _ours(tasks: list[MetaWorldTask]) -> set[tuple[str, tuple[float, ...]]]:
    return {(t.env_name, t.rand_vec) for t in tasks}


@needs_metaworld
def test_ml1_trains_on_the_benchmarks_train_goals_and_evaluates_on_its_test_goals() -> None:
    import metaworld

    bench = metaworld.ML1("push-v3", seed=3)
    family = envs.make_unwrapped("MetaWorldML1-v0", env_name="push-v3", benchmark_seed=3)
    train = family.sample_tasks(50, np.random.default_rng(0))
    test = family.sample_held_out_tasks(50, np.random.default_rng(0))
    # all 50 goals of each split, each once: metaworld.ML1's own train and test tasks
    assert len(_ours(train)) == len(_ours(test)) == 50
    assert _ours(train) == _goals(bench.train_tasks) and _ours(test) == _goals(bench.test_tasks)
    assert not _ours(train) & _ours(test)
    # metaworld 3.1.1's gymnasium id "Meta-World/ML1-train" holds the test goals (its loop variable); ours do not
    import gymnasium

    vec = gymnasium.make_vec("Meta-World/ML1-train", env_name="push-v3", meta_batch_size=1, seed=3)
    registered = _goals(vec.get_attr("tasks")[0])
    vec.close()
    if registered == _goals(bench.test_tasks):  # the upstream bug, while it lasts
        assert not registered & _ours(train)
    family.close()


@needs_metaworld
def test_ml10_meta_trains_on_the_train_classes_and_evaluates_on_the_held_out_ones() -> None:
    import metaworld

    bench = metaworld.ML10(seed=0)
    family = envs.make_unwrapped("MetaWorldML10-v0")
    train = family.sample_tasks(40, np.random.default_rng(1))
    test = family.sample_held_out_tasks(25, np.random.default_rng(1))
    assert Counter(t.env_name for t in train) == dict.fromkeys(bench.train_classes, 4)  # evenly spread
    assert Counter(t.env_name for t in test) == dict.fromkeys(bench.test_classes, 5)
    assert _ours(train) <= _goals(bench.train_tasks) and _ours(test) <= _goals(bench.test_tasks)
    assert len(_ours(train)) == 40 and len(_ours(test)) == 25  # no goal twice
    assert set(family.class_names) == set(bench.train_classes) | set(bench.test_classes)
    assert family.sample_held_out_tasks(25, np.random.default_rng(1)) == test  # reproducible
    family.close()


@needs_metaworld
def test_tasks_outside_the_benchmark_are_clear_errors() -> None:
    family = envs.make_unwrapped("MetaWorldML1-v0")
    task = family.sample_tasks(1, np.random.default_rng(0))[0]
    with pytest.raises(TaskError, match="not one of the benchmark's goals of reach-v3"):
        family.set_task(MetaWorldTask("reach-v3", tuple(x + 1e-3 for x in task.rand_vec)))
    with pytest.raises(TaskError, match="'push-v3' is not one of this benchmark's classes"):
        family.set_task(MetaWorldTask("push-v3", task.rand_vec))
    with pytest.raises(TaskError, match="benchmark_seed=0"):  # another seed's goals
        family.set_task(envs.make_unwrapped("MetaWorldML1-v0", benchmark_seed=5).sample_tasks(
            1, np.random.default_rng(0))[0])
    with pytest.raises(ValueError, match="Did you mean 'reach-v3'"):
        envs.make_unwrapped("MetaWorldML1-v0", env_name="reach-v2")
    with pytest.raises(ValueError, match="benchmark_seed"):
        envs.make_unwrapped("MetaWorldML1-v0", benchmark_seed=-1)
    family.set_task(task)
    with pytest.raises(RuntimeError, match="call reset"):
        family.step(np.zeros(4))
    family.close()


@needs_metaworld
def test_a_simulator_reused_from_the_pool_steps_like_a_fresh_one() -> None:
    """A family whose task changes class takes another class's simulator from the pool, used before by other
    tasks: its episodes must be those of a family made for the task alone."""
    family = envs.make_unwrapped("MetaWorldML10-v0")
    tasks = family.sample_tasks(10, np.random.default_rng(2))  # one per train class
    actions = np.random.default_rng(3).uniform(-1, 1, (60, 4))

    def episode(env: envs.MetaWorldML10Env, task: MetaWorldTask) -> np.ndarray:
        out = [env.reset(options={"task": task})[0]]
        for a in actions:
            obs, reward, _, _, info = env.step(a)
            out.append(np.concatenate([obs, [reward, info["success"]]]))
        return np.concatenate(out)

    used = [episode(family, t) for t in tasks]  # each class's simulator now comes back to the pool dirty
    other = envs.make_unwrapped("MetaWorldML10-v0")
    for task, first in zip(tasks[::-1], used[::-1]):
        assert np.array_equal(episode(other, task), first)  # a pooled simulator, another task before it
    family.close()
    other.close()


@needs_metaworld
def test_the_pool_keeps_a_bounded_number_of_idle_simulators() -> None:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    from envs.metaworld import _SimulatorPool

    reach, push = ALL_V3_ENVIRONMENTS["reach-v3"], ALL_V3_ENVIRONMENTS["push-v3"]
    pool = _SimulatorPool(limit=2)
    a, b, c = pool.take("reach-v3", reach, None), pool.take("push-v3", push, None), pool.take("reach-v3", reach, None)
    assert a is not c and isinstance(b, push)
    for name, env in (("reach-v3", a), ("push-v3", b), ("reach-v3", c)):
        pool.give_back(name, env, rendering=False)
    assert pool.idle() == 2  # a, returned first, was closed
    assert pool.take("reach-v3", reach, None) is c and pool.take("push-v3", push, None) is b
    assert pool.idle() == 0 and pool.take("reach-v3", reach, None) not in (a, c)  # a new one


@needs_metaworld
def test_success_is_reported_and_ends_an_episode_only_when_asked() -> None:
    """A scripted reach: the hand moves to the goal, so ``success`` turns 1; with ``terminate_on_success`` the
    episode ends there."""
    for terminate in (False, True):
        env = envs.make("MetaWorldML1-v0", terminate_on_success=terminate)
        task = env.unwrapped.sample_tasks(1, np.random.default_rng(0))[0]
        env.reset(options={"task": task})
        goal = np.array(task.rand_vec[3:])
        successes, terminated, steps = [], False, 0
        while not terminated and steps < 200:
            hand = env.unwrapped._sim.tcp_center
            action = np.append(np.clip((goal - hand) * 100, -1, 1), 0.0)
            _, _, terminated, _, info = env.step(action)
            successes.append(info["success"])
            steps += 1
        assert set(successes) <= {0.0, 1.0} and 1.0 in successes
        assert terminated == terminate and (not terminate or successes.index(1.0) == steps - 1)
        env.close()
    assert envs.family_class("MetaWorldML45-v0").reports_success
    assert not envs.family_class("Navigation2D-v0").reports_success


@needs_metaworld
def test_the_batched_env_reports_success_per_slot() -> None:
    benv = envs.BatchedEnv("MetaWorldML1-v0", 2, horizon=5)
    assert benv.backend == "gymnasium"
    benv.reset(benv.sample_tasks(2, np.random.default_rng(0)), seeds=0)
    benv.step(np.zeros((2, 4)))
    assert set(benv.last_info) >= {"success", "near_object"} and benv.last_info["success"].shape == (2,)
    benv.close()


@needs_metaworld
def test_the_goal_tables_are_computed_once_per_process() -> None:
    assert benchmark_tasks("ML1", 0, "reach-v3") is benchmark_tasks("ML1", 0, "reach-v3")


@pytest.mark.skipif(MISSING is None, reason="metaworld is installed here")
def test_without_metaworld_import_works_and_a_family_says_what_to_install() -> None:
    assert "rl_alphamaml/MetaWorldML10-v0" in envs.FAMILY_IDS
    with pytest.raises(MissingDependencyError, match=r'pip install -e "\.\[metaworld\]"'):
        envs.make("MetaWorldML1-v0")
    with pytest.raises(MissingDependencyError):
        envs.BatchedEnv("MetaWorldML10-v0", 2)


@needs_metaworld
def test_a_mujoco_whose_welds_metaworld_cannot_write_is_refused_with_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """metaworld 3.1.1 writes 11 weld parameters; MuJoCo 4 has 12 (``mjNEQDATA``), and its environments fail to
    build there. The installed metaworld with only that constant changed must be refused before a family is made."""
    import mujoco

    monkeypatch.setattr(mujoco, "mjNEQDATA", 12, raising=False)
    message = r"cannot build its environments on MuJoCo .*weld constraints have 11 parameters, this MuJoCo.s 12"
    with pytest.raises(MissingDependencyError, match=message):
        import_metaworld()
    with pytest.raises(MissingDependencyError, match=r'use MuJoCo 3\.3\.0, which pip install -e "\.\[metaworld\]"'):
        envs.make("MetaWorldML1-v0")
