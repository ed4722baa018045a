"""The batched stepper: transitions equal to gymnasium's env, episode protocol, seeding, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import envs
from envs import BatchedEnv, TaskError, VelocityTask
from envs.batched import BACKENDS, mjbatch
from envs.metaworld import MetaWorldFamily

TOL = 1e-6  # the bound; in practice the two are bit-identical

#: every backend of the MuJoCo families; "batch" where this MuJoCo has mujoco.batch (MuJoCo >= 3.17)
BACKEND_PARAMS = [
    pytest.param(name, marks=pytest.mark.skipif(name == "batch" and mjbatch is None,
                                                reason="this MuJoCo has no mujoco.batch"))
    for name in BACKENDS
]


def _slot_field(benv: BatchedEnv, name: str, i: int) -> np.ndarray:
    """Slot ``i``'s ``MjData`` field ``name`` on either MuJoCo backend."""
    backend: Any = benv._backend
    if benv.backend == "batch":
        return np.asarray(backend.batch.bind(name)[i])
    return np.asarray(getattr(backend.datas[i], name))


def _slot_model_field(benv: BatchedEnv, name: str, i: int) -> np.ndarray:
    """Slot ``i``'s ``MjModel`` field ``name`` on either MuJoCo backend."""
    backend: Any = benv._backend
    if benv.backend == "batch":
        return np.asarray(backend.batch.expand(name)[i])
    return np.asarray(getattr(backend.models[i], name))


def _actions(env_id: str, horizon: int, n: int, act_dim: int, seed: int) -> np.ndarray:
    # Gaussian like a policy's samples: beyond the control range (MuJoCo clamps, the cost does
    # not) and, for navigation, beyond the ±0.1 clip
    scale = 0.1 if "Navigation" in env_id else 1.0
    return np.random.default_rng(seed).normal(0.0, scale, (horizon, n, act_dim))


def _compare_with_gymnasium(env_id: str, n: int = 3, backend: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run n slots batched and the same n episodes one by one in ONE gymnasium env; compare."""
    benv = BatchedEnv(env_id, n, n_threads=2, backend=backend, **kwargs)
    mujoco_slots = benv.backend in BACKENDS
    if backend is not None and mujoco_slots:
        assert benv.backend == backend
    tasks = benv.sample_tasks(n, np.random.default_rng(11))
    seeds = [1000 + 7 * i for i in range(n)]
    acts = _actions(env_id, benv.horizon, n, benv.act_dim, 5)
    obs = [benv.reset(tasks, seeds)]
    steps, infos, active = [], [], []
    while not benv.done:
        active.append(benv.active)
        steps.append(benv.step(acts[len(steps)]))
        obs.append(steps[-1].obs)
        infos.append({k: v.copy() for k, v in benv.last_info.items()})
    assert benv.tasks == tuple(tasks)
    env = envs.make(env_id, **kwargs)
    max_diff, lengths = 0.0, []
    for i in range(n):
        o, info = env.reset(seed=seeds[i], options={"task": tasks[i]})
        assert info["task"] == tasks[i]
        max_diff = max(max_diff, float(np.abs(o - obs[0][i]).max()))
        for t, step in enumerate(steps):
            assert active[t][i]
            o, r, terminated, truncated, info = env.step(acts[t, i])
            max_diff = max(max_diff, float(np.abs(o - step.obs[i]).max()), abs(r - step.reward[i]))
            for key, value in infos[t].items():
                max_diff = max(max_diff, abs(info[key] - value[i]))
            assert terminated == step.terminated[i] and truncated == step.truncated[i], (i, t)
            if terminated or truncated:
                lengths.append(t + 1)
                # an ended slot is frozen: reward 0, no flags, last observation repeated
                for later in steps[t + 1 :]:
                    assert later.reward[i] == 0.0 and not later.terminated[i] and not later.truncated[i]
                    assert np.array_equal(later.obs[i], step.obs[i])
                break
        if mujoco_slots:
            # the solver's warm start travels with each slot's state (an ended slot's is frozen)
            warm = _slot_field(benv, "qacc_warmstart", i)
            assert np.any(warm != 0.0)
            assert np.abs(warm - env.unwrapped.data.qacc_warmstart).max() <= TOL
    env.close()
    benv.close()
    assert max_diff <= TOL, f"{env_id}: batched and gymnasium transitions differ by {max_diff}"
    return {"lengths": lengths, "max_diff": max_diff}


#: (family, backend): the MuJoCo families on each backend; the others (navigation: numpy; Meta-World: one
#: environment per slot) once more with the default for navigation, once for the others
FAMILY_BACKENDS = [
    pytest.param(env_id, *p.values, marks=p.marks, id=f"{env_id}-{p.values[0]}")
    for env_id in envs.FAMILY_IDS
    for p in (BACKEND_PARAMS if not issubclass(envs.family_class(env_id), MetaWorldFamily) else [pytest.param(None)])
]


@pytest.mark.parametrize(("env_id", "backend"), FAMILY_BACKENDS)
def test_batched_transitions_equal_gymnasium_over_full_episodes(env_id: str, backend: str | None) -> None:
    result = _compare_with_gymnasium(env_id, backend=backend)
    assert result["lengths"] == [envs.horizon_of(env_id)] * 3


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("env_id", [i for i in envs.FAMILY_IDS if "/Ant" in i])
def test_batched_transitions_equal_gymnasium_on_the_paper_ant(env_id: str, backend: str) -> None:
    # the MAML paper's Ant: an mj_forward after every step, one substep, termination on (σ = 1 actions end
    # some episodes early), the observation and rewards read from the centre of mass
    result = _compare_with_gymnasium(env_id, n=4, backend=backend, model="maml2017")
    assert result["max_diff"] == 0.0 and len(result["lengths"]) == 4 and min(result["lengths"]) < 200


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize(("env_id", "kwargs"),
                         [("HalfCheetahRandParams-v0", {}), ("AntGoal-v0", {"model": "maml2017"})])
def test_batched_transitions_equal_gymnasium_with_the_task_in_the_observation(env_id: str, kwargs: dict[str, Any],
                                                                              backend: str) -> None:
    result = _compare_with_gymnasium(env_id, n=3, backend=backend, task_in_observation=True, **kwargs)
    assert result["max_diff"] == 0.0


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_batched_termination_matches_gymnasium_and_freezes_ended_slots(backend: str) -> None:
    # Gaussian actions make the ant jump above z = 1: slots end at different steps
    result = _compare_with_gymnasium("AntDir-v0", n=4, backend=backend, terminate_when_unhealthy=True)
    assert min(result["lengths"]) < 200 and len(set(result["lengths"])) > 1


def test_seeds_follow_gymnasium_semantics() -> None:
    benv = BatchedEnv("HalfCheetahVel-v0", 3, horizon=2)
    env = envs.make("HalfCheetahVel-v0")
    task = VelocityTask(1.0)
    first = benv.reset(task, seeds=10)  # slot i seeded with 10 + i
    second = benv.reset(task)  # no seed: each slot's stream continues
    explicit = benv.reset(task, seeds=[10, 11, 12])
    for i in range(3):
        assert np.array_equal(first[i], env.reset(seed=10 + i, options={"task": task})[0])
        assert np.array_equal(second[i], env.reset()[0])
        assert np.array_equal(explicit[i], first[i])
    assert not np.array_equal(first[0], first[1])
    unseeded = BatchedEnv("HalfCheetahVel-v0", 2, horizon=2).reset(task)
    assert not np.array_equal(unseeded[0], unseeded[1])
    with pytest.raises(ValueError, match="3 seeds for 2 slots"):
        BatchedEnv("HalfCheetahVel-v0", 2).reset(task, seeds=[1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        BatchedEnv("HalfCheetahVel-v0", 2).reset(task, seeds=[1, -2])


def test_task_layout_and_task_info() -> None:
    benv = BatchedEnv("AntGoal-v0", 6, horizon=3)
    t = benv.sample_tasks(2, np.random.default_rng(0))
    benv.reset(t, seeds=0)
    assert benv.tasks == (t[0], t[0], t[0], t[1], t[1], t[1])
    assert np.array_equal(benv.task_params, np.array([t[0].goal] * 3 + [t[1].goal] * 3))
    benv.reset([task.to_dict() for task in benv.sample_tasks(6, np.random.default_rng(1))])
    assert len(set(benv.tasks)) == 6
    with pytest.raises(ValueError, match="4 tasks for 6 slots"):
        benv.reset(t * 2)
    with pytest.raises(TaskError, match="takes GoalTask tasks"):
        benv.reset(VelocityTask(1.0))
    with pytest.raises(TaskError, match="outside the family's range"):
        benv.reset(envs.GoalTask((0.0, 9.0)))


def test_episode_protocol_and_errors() -> None:
    benv = BatchedEnv("Navigation2D-v0", 4, horizon=3)
    assert benv.obs_dim == 2 and benv.act_dim == 2 and benv.n_threads >= 1
    with pytest.raises(RuntimeError, match="call reset"):
        benv.step(np.zeros((4, 2)))
    with pytest.raises(RuntimeError, match="no tasks yet"):
        _ = benv.tasks
    obs = benv.reset(benv.sample_tasks(4, np.random.default_rng(0)), seeds=0)
    assert obs.shape == (4, 2) and obs.dtype == np.float32
    with pytest.raises(ValueError, match=r"actions must have shape \(4, 2\)"):
        benv.step(np.zeros((2, 4)))
    flags = []
    for _ in range(3):
        assert benv.active.all() and not benv.done
        step = benv.step(np.full((4, 2), 0.05))
        flags.append(step.truncated.copy())
        assert step.reward.shape == (4,) and step.reward.dtype == np.float64
        assert not step.terminated.any()
    assert [f.all() for f in flags] == [False, False, True] and benv.t == 3 and benv.done
    assert np.allclose(step.obs, 0.15)
    with pytest.raises(RuntimeError, match="every slot's episode has ended"):
        benv.step(np.zeros((4, 2)))
    benv.reset(benv.tasks)  # a new episode
    assert benv.t == 0 and benv.active.all()
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            BatchedEnv("Navigation2D-v0", bad)
        with pytest.raises(ValueError):
            BatchedEnv("Navigation2D-v0", 2, horizon=bad)
    with pytest.raises(ValueError, match="n_threads"):
        BatchedEnv("AntVel-v0", 2, n_threads=0)


def test_horizon_is_explicit_and_env_kwargs_reach_the_family() -> None:
    with BatchedEnv("HalfCheetahVel-v0", 2, horizon=5, low=1.0, high=1.5) as benv:
        assert benv.horizon == 5 and benv.family.low == 1.0
        benv.reset(benv.sample_tasks(2, np.random.default_rng(0)), seeds=0)
        assert all(1.0 <= t.velocity <= 1.5 for t in benv.tasks)
        steps = 0
        while not benv.done:
            benv.step(np.zeros((2, 6)))
            steps += 1
        assert steps == 5
    assert "HalfCheetahVel-v0" in repr(benv)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_dynamics_slots_get_their_own_models(backend: str) -> None:
    benv = BatchedEnv("HalfCheetahRandParams-v0", 2, horizon=20, backend=backend)
    light = envs.DynamicsTask((0.5,) * 7, (1.0,) * 6, 1.0)
    heavy = envs.DynamicsTask((2.0,) * 7, (1.0,) * 6, 1.0)
    benv.reset([light, heavy], seeds=[3, 3])  # same initial state, different masses
    masses = [_slot_model_field(benv, "body_mass", i) for i in range(2)]
    assert np.allclose(masses[1][1:], 4.0 * masses[0][1:])
    assert np.array_equal(masses[0], benv.family.model_fields(benv.task_params[:1])["body_mass"][0])
    actions = np.repeat(np.random.default_rng(0).normal(size=(20, 1, 6)), 2, axis=1)
    for a in actions:
        obs = benv.step(a).obs
    assert np.abs(obs[0] - obs[1]).max() > 1e-2


def test_batched_navigation_goal_tolerance_matches_gymnasium() -> None:
    # Noisy actions towards nowhere in particular reach a 0.15-wide goal box in some slots only.
    result = _compare_with_gymnasium("Navigation2D-v0", n=6, goal_tolerance=0.15)
    assert min(result["lengths"]) < 100 and max(result["lengths"]) == 100


@pytest.mark.parametrize("env_id", ["HalfCheetahVel-v0", "Navigation2D-v0"])
def test_non_finite_actions_are_refused(env_id: str) -> None:
    env = envs.make(env_id)
    env.reset(seed=0)
    bad = np.zeros(env.action_space.shape)
    bad[0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        env.unwrapped.step(bad)
    env.close()
    benv = BatchedEnv(env_id, 3, n_threads=1)
    benv.reset(benv.sample_tasks(3, np.random.default_rng(0)), seeds=[0, 1, 2])
    actions = np.zeros((3, benv.act_dim))
    actions[1, 0] = np.inf
    with pytest.raises(ValueError, match=r"slots \[1\]"):
        benv.step(actions)
    benv.close()


def test_the_backend_is_chosen_by_argument_then_environment_then_mujoco(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(envs.batched.BACKEND_ENV, raising=False)
    default = "batch" if mjbatch is not None else "mjdata"
    assert envs.resolve_backend() == default
    with BatchedEnv("HalfCheetahVel-v0", 2, horizon=2) as benv:
        assert benv.backend == default and f"backend={default!r}" in repr(benv)
    monkeypatch.setenv(envs.batched.BACKEND_ENV, "mjdata")
    assert envs.resolve_backend() == "mjdata"
    with BatchedEnv("AntDir-v0", 2, horizon=2) as benv:
        assert benv.backend == "mjdata" and isinstance(benv._backend, envs.batched._MjDataBackend)
    with BatchedEnv("Navigation2D-v0", 2, horizon=2) as benv:
        assert benv.backend == "numpy"  # the navigation families run on numpy whatever the backend
    monkeypatch.setenv(envs.batched.BACKEND_ENV, "")  # empty: as if unset
    assert envs.resolve_backend() == default
    if mjbatch is not None:
        monkeypatch.setenv(envs.batched.BACKEND_ENV, "mjdata")
        assert envs.resolve_backend("batch") == "batch"  # the argument wins over the variable


def test_backend_mistakes_are_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(envs.batched.BACKEND_ENV, raising=False)
    with pytest.raises(envs.BackendError, match=r"backend='rollout' is not a BatchedEnv backend; choose one of "
                                                r"batch, mjdata"):
        BatchedEnv("HalfCheetahVel-v0", 2, backend="rollout")
    monkeypatch.setenv(envs.batched.BACKEND_ENV, "Batch")
    with pytest.raises(envs.BackendError, match=r"RL_ALPHAMAML_BATCHED_BACKEND='Batch' is not"):
        BatchedEnv("Navigation2D-v0", 2)
    # a MuJoCo without mujoco.batch (before 3.17): asking for it says what to do instead
    monkeypatch.setattr(envs.batched, "mjbatch", None)
    monkeypatch.setenv(envs.batched.BACKEND_ENV, "batch")
    missing = (r"needs mujoco\.batch, which MuJoCo .* does not have \(it came with MuJoCo 3\.17\): unset "
               r"RL_ALPHAMAML_BATCHED_BACKEND or choose 'mjdata'")
    with pytest.raises(envs.BackendError, match=missing):
        BatchedEnv("HalfCheetahVel-v0", 2)
    monkeypatch.delenv(envs.batched.BACKEND_ENV)
    with pytest.raises(envs.BackendError, match="pass backend=None or choose 'mjdata'"):
        envs.resolve_backend("batch")
    assert envs.resolve_backend() == "mjdata"


class _BatchHookCheetah(envs.HalfCheetahVelEnv):
    """A family that changes its slots through the batch backend's hook only."""

    def batch_apply_tasks(self, batch: Any, ids: np.ndarray, tasks: Any) -> None:
        batch.expand("dof_damping")[ids] = 2.0


def test_the_mjdata_backend_refuses_a_family_it_cannot_give_its_tasks() -> None:
    env_id = envs.register_family("BatchHookCheetah-v0", _BatchHookCheetah, max_episode_steps=5)
    with pytest.raises(envs.BackendError, match="_BatchHookCheetah applies its tasks through batch_apply_tasks, "
                                                "which only the 'batch' backend calls: give the family model_fields"):
        BatchedEnv(env_id, 2, backend="mjdata")


@pytest.mark.parametrize("threads", [1, 3])
def test_the_mjdata_backend_gives_the_same_steps_on_any_number_of_threads(threads: int) -> None:
    # the slots are shared out among the threads; ended slots (termination on) are not stepped again
    def run(n_threads: int) -> list[np.ndarray]:
        with BatchedEnv("AntDir-v0", 5, n_threads=n_threads, backend="mjdata", model="maml2017") as benv:
            obs = [benv.reset(benv.sample_tasks(5, np.random.default_rng(0)), seeds=3)]
            actions = _actions("AntDir-v0", benv.horizon, 5, benv.act_dim, 1)
            while not benv.done:
                obs.append(benv.step(actions[benv.t]).obs)
        return obs

    assert all(np.array_equal(a, b) for a, b in zip(run(threads), run(2), strict=True))
