"""The Ant families' two simulator models: the MAML paper's Ant (``model="maml2017"``) against the facts of its
code (cbfinn/maml_rl: ``vendor/mujoco_models/ant.xml``, ``rllab/envs/mujoco/ant_env_rand*.py``). The batched
simulator on it is checked against the single env in ``test_batched.py``."""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest

import envs
from envs import DirectionTask, GoalTask, VelocityTask


def _rllab_comvel(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """rllab's ``MjModel._compute_subtree`` (cbfinn/maml_rl ``rllab/mujoco_py/mjcore.py``) re-derived: each body's
    velocity at its centre of mass by ``mj_objectVelocity``, mass-weighted and summed over its subtree."""
    vel = np.zeros((model.nbody, 6))
    for i in range(model.nbody):
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, i, vel[i], 0)
    mass = model.body_mass.copy()
    momentum = vel[:, 3:] * mass[:, None]
    for i in range(model.nbody - 1, 0, -1):
        momentum[model.body_parentid[i]] += momentum[i]
        mass[model.body_parentid[i]] += mass[i]
    return momentum / mass[:, None]


def test_the_paper_model_has_the_papers_simulator() -> None:
    paper = envs.make("AntDir-v0", model="maml2017").unwrapped
    v5 = envs.make("AntDir-v0").unwrapped
    assert paper.model.opt.timestep == 0.02 and paper.frame_skip == 1 and paper.dt == pytest.approx(0.02)
    assert v5.model.opt.timestep == 0.01 and v5.frame_skip == 5 and v5.dt == pytest.approx(0.05)
    assert paper.model.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
    np.testing.assert_array_equal(paper.model.geom_solimp[:, :3], np.tile([0.8, 0.8, 0.01], (paper.model.ngeom, 1)))
    np.testing.assert_array_equal(paper.model.geom_solref, np.tile([0.02, 1.0], (paper.model.ngeom, 1)))
    assert not np.allclose(v5.model.geom_solimp[:, :3], [0.8, 0.8, 0.01])
    # the same robot and torque range: gear 150 on [-1, 1] (rllab: gear 1 on [-150, 150])
    for m in (paper.model, v5.model):
        assert m.nbody == 14 and m.nq == 15 and m.nu == 8
        np.testing.assert_array_equal(m.actuator_gear[:, 0] * m.actuator_ctrlrange[:, 1], np.full(8, 150.0))
    np.testing.assert_array_equal(paper.model.body_mass, v5.model.body_mass)
    assert paper._terminate_when_unhealthy and not v5._terminate_when_unhealthy
    assert not envs.make("AntDir-v0", model="maml2017", terminate_when_unhealthy=False).unwrapped \
        ._terminate_when_unhealthy
    assert paper.observation_space.shape == (125,) and v5.observation_space.shape == (105,)
    with pytest.raises(ValueError, match="model must be one of v5, maml2017"):
        envs.make("AntVel-v0", model="rllab")


def test_the_paper_model_starts_from_init_qpos_with_rllabs_noise() -> None:
    env = envs.make("AntVel-v0", model="maml2017")
    init = np.array([0.0, 0.0, 0.55, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0])
    qpos, qvel = [], []
    for seed in range(300):
        obs, _ = env.reset(seed=seed)
        qpos.append(obs[:15])
        qvel.append(obs[15:29])
    qpos_noise, qvel_noise = np.array(qpos) - init, np.array(qvel)
    assert abs(qpos_noise.mean()) < 2e-3 and 0.009 < qpos_noise.std() < 0.011  # 0.01·N(0, 1)
    assert abs(qvel_noise.mean()) < 2e-2 and 0.09 < qvel_noise.std() < 0.11  # 0.1·N(0, 1)


@pytest.mark.parametrize(("env_id", "task"), [("AntDir-v0", DirectionTask(-1)), ("AntVel-v0", VelocityTask(1.7)),
                                              ("AntGoal-v0", GoalTask((1.5, -2.0))),
                                              ("AntDir2D-v0", envs.Direction2DTask(2.0))])
def test_the_paper_model_rewards_observes_and_terminates_as_rllab(env_id: str, task: object) -> None:
    env = envs.make(env_id, model="maml2017")
    u = env.unwrapped
    env.reset(seed=3, options={"task": task})
    rng = np.random.default_rng(0)
    for _ in range(200):
        action = rng.normal(0.0, 1.0, 8)  # beyond [-1, 1]: the cost sees the clipped control
        before = copy.copy(u.data)
        obs, reward, terminated, _, info = env.step(action)
        d, m = u.data, u.model
        # the outputs describe the state after the step: mj_forward there gives the same contact forces
        after = copy.copy(before)
        after.ctrl[:] = action
        mujoco.mj_step(m, after)
        mujoco.mj_forward(m, after)
        np.testing.assert_array_equal(d.cfrc_ext, after.cfrc_ext)
        comvel = _rllab_comvel(m, d)[1]
        np.testing.assert_allclose([info["x_velocity"], info["y_velocity"]], comvel[:2], rtol=0, atol=1e-12)
        com = d.subtree_com[1]
        np.testing.assert_array_equal([info["x_position"], info["y_position"]], com[:2])
        expected_obs = np.concatenate((d.qpos, d.qvel, np.clip(d.cfrc_ext, -1, 1).ravel(), d.xmat[1], com))
        np.testing.assert_array_equal(obs, expected_obs)
        if env_id == "AntDir-v0":
            task_reward = -1.0 * comvel[0]
        elif env_id == "AntVel-v0":
            task_reward = -abs(comvel[0] - 1.7) + 1.0
        elif env_id == "AntGoal-v0":
            task_reward = -abs(com[0] - 1.5) - abs(com[1] + 2.0) + 4.0
        else:
            task_reward = comvel[0] * np.cos(2.0) + comvel[1] * np.sin(2.0)
        shaping = (0.05 - 0.5e-2 * np.sum(np.clip(action, -1, 1) ** 2)
                   - 0.5e-3 * np.sum(np.clip(d.cfrc_ext, -1, 1) ** 2))
        assert reward == pytest.approx(task_reward + shaping, abs=1e-9)
        z = d.qpos[2]
        assert terminated == (not 0.2 <= z <= 1.0)
        if terminated:
            break


@pytest.mark.parametrize(("env_id", "kwargs", "k"), [("AntDir-v0", {"model": "maml2017"}, 1),
                                                     ("AntGoal-v0", {}, 2), ("HalfCheetahVel-v0", {}, 1)])
def test_task_in_observation_appends_the_task_the_oracles_observation(env_id: str, kwargs: dict[str, str],
                                                                      k: int) -> None:
    plain = envs.make(env_id, **kwargs)
    oracle = envs.make(env_id, task_in_observation=True, **kwargs)
    assert oracle.observation_space.shape == (plain.observation_space.shape[0] + k,)
    task = oracle.unwrapped.sample_tasks(1, np.random.default_rng(4))[0]
    obs, _ = oracle.reset(seed=2, options={"task": task})
    ref, _ = plain.reset(seed=2, options={"task": task})
    params = oracle.unwrapped.task_params([task])[0]
    np.testing.assert_array_equal(obs, np.concatenate((ref, params)))
    action = np.full(oracle.action_space.shape, 0.3)
    np.testing.assert_array_equal(oracle.step(action)[0], np.concatenate((plain.step(action)[0], params)))
    assert oracle.observation_space.contains(obs)
