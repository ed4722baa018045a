"""The single environments: registration, gymnasium/SB3 API checks, task API, reward formulas."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import envs
from envs import DirectionTask, DynamicsTask, GoalTask, UnknownEnvError, VelocityTask

ROOT = Path(__file__).resolve().parents[2]
LOCOMOTION = [eid for eid in envs.FAMILY_IDS if "Navigation" not in eid]


def test_every_family_is_registered_on_import_with_its_horizon() -> None:
    expected = {
        "HalfCheetahVel-v0": 200,
        "HalfCheetahDir-v0": 200,
        "HalfCheetahRandParams-v0": 200,
        "AntVel-v0": 200,
        "AntDir-v0": 200,
        "AntDir2D-v0": 200,
        "AntGoal-v0": 200,
        "Navigation2D-v0": 100,
        "Navigation2DSparse-v0": 100,
        "MetaWorldML1-v0": 500,
        "MetaWorldML10-v0": 500,
        "MetaWorldML45-v0": 500,
    }
    assert set(envs.FAMILY_IDS) == {f"rl_alphamaml/{k}" for k in expected}
    for name, horizon in expected.items():
        spec = gymnasium.spec(f"rl_alphamaml/{name}")
        assert spec.max_episode_steps == horizon == envs.horizon_of(name)
    envs.register_families()  # idempotent: no duplicate-registration warning or error


def test_unknown_ids_are_clear_errors() -> None:
    with pytest.raises(UnknownEnvError, match="Did you mean 'rl_alphamaml/HalfCheetahVel-v0'") as err:
        envs.make("rl_alphamaml/HalfCheetahVell-v0")
    assert isinstance(err.value, ValueError)
    assert "Known families: rl_alphamaml/HalfCheetahVel-v0" in str(err.value)
    with pytest.raises(UnknownEnvError, match="unknown task family 'Hopper-v5'"):
        envs.make("Hopper-v5")
    with pytest.raises(UnknownEnvError):
        envs.BatchedEnv("rl_alphamaml/Nope-v0", 2)
    with pytest.raises(gymnasium.error.Error):  # gymnasium's own error through gymnasium.make
        gymnasium.make("rl_alphamaml/Nope-v0")
    assert envs.resolve_id("AntGoal-v0") == "rl_alphamaml/AntGoal-v0"


@pytest.mark.parametrize("env_id", envs.FAMILY_IDS)
def test_passes_gymnasium_and_sb3_env_checkers(env_id: str) -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = envs.make_unwrapped(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=True)
    # failures raise; the only advice expected is about unbounded observation spaces (gymnasium's
    # own v5 spaces), for navigation the ±0.1 action space of MAML-RL and for Meta-World the goal's coordinates,
    # which its meta-learning benchmarks hide as zeros (an observation space whose bounds are equal there)
    advice = ("infinity", "symmetric and normalized Box action space", "maximum and minimum values are equal")
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in advice)]
    assert not unexpected, unexpected
    wrapped = envs.make(env_id)  # with gymnasium's PassiveEnvChecker, OrderEnforcing and TimeLimit
    wrapped.reset(seed=0)
    wrapped.step(wrapped.action_space.sample())
    wrapped.close()


@pytest.mark.parametrize("env_id", envs.FAMILY_IDS)
def test_task_api_set_get_reset_options_and_info(env_id: str) -> None:
    env = envs.make(env_id)
    family = env.unwrapped
    t0, t1 = family.sample_tasks(2, np.random.default_rng(7))
    family.set_task(t0)
    assert family.get_task() == t0
    obs, info = env.reset(seed=3, options={"task": t1})
    assert family.get_task() == t1 and info["task"] == t1
    assert env.observation_space.contains(obs)
    _, _, _, truncated, info = env.step(env.action_space.sample())
    assert info["task"] == t1 and not truncated
    obs, info = env.reset(seed=3)  # the task stays until changed
    assert info["task"] == t1
    obs, info = env.reset(options={"task": t0.to_dict()})  # dict form
    assert info["task"] == t0
    env.close()
    made = envs.make(env_id, task=t1)
    assert made.unwrapped.get_task() == t1
    made.close()


@pytest.mark.parametrize("env_id", envs.FAMILY_IDS)
def test_an_invalid_task_is_a_value_error_and_the_env_stays_usable(env_id: str) -> None:
    env = envs.make(env_id)  # a fresh env: the invalid task is its very first reset
    with pytest.raises(ValueError):
        env.reset(options={"task": {"no_such_field": 1}})
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, _, _, _ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and np.isfinite(reward)
    env.close()


@pytest.mark.parametrize("env_id", envs.FAMILY_IDS)
def test_fixed_horizon_without_early_termination(env_id: str) -> None:
    env = envs.make(env_id)
    env.reset(seed=0, options={"task": env.unwrapped.sample_tasks(1, np.random.default_rng(0))[0]})
    rng = np.random.default_rng(1)
    scale = 0.1 if "Navigation" in env_id else 1.0
    steps = 0
    while True:
        _, reward, terminated, truncated, _ = env.step(rng.normal(0.0, scale, env.action_space.shape))
        steps += 1
        assert math.isfinite(reward)
        if terminated or truncated:
            break
    assert not terminated and truncated and steps == envs.horizon_of(env_id)
    env.close()


def _step(env: gymnasium.Env, action: np.ndarray) -> tuple[float, dict]:
    _, reward, _, _, info = env.step(action)
    return reward, info


def test_halfcheetah_rewards_follow_the_maml_formulas() -> None:
    rng = np.random.default_rng(0)
    for env_id, task, forward in (
        ("HalfCheetahVel-v0", VelocityTask(1.3), lambda v: -abs(v - 1.3)),
        ("HalfCheetahDir-v0", DirectionTask(-1), lambda v: -v),
        ("HalfCheetahRandParams-v0", None, lambda v: v),
    ):
        env = envs.make(env_id)
        options = {} if task is None else {"task": task}
        env.reset(seed=1, options=options)
        data = env.unwrapped.data
        for _ in range(30):
            a = rng.normal(0.0, 1.0, 6)
            x0 = float(data.qpos[0])
            reward, info = _step(env, a)
            v = (float(data.qpos[0]) - x0) / 0.05
            assert reward == pytest.approx(forward(v) - 0.05 * float(np.sum(a**2)), abs=1e-12)
            assert info["x_velocity"] == pytest.approx(v, abs=1e-12)
        obs = env.unwrapped._get_obs()
        assert obs.shape == (17,) and np.array_equal(obs, np.concatenate((data.qpos[1:], data.qvel)))
        env.close()


@pytest.mark.parametrize(
    ("env_id", "task"),
    [
        ("AntVel-v0", VelocityTask(2.0)),
        ("AntDir-v0", DirectionTask(-1)),
        ("AntDir2D-v0", envs.Direction2DTask(2.0)),
        ("AntGoal-v0", GoalTask((1.0, -2.0))),
    ],
)
def test_ant_rewards_follow_the_maml_formulas(env_id: str, task: object) -> None:
    env = envs.make(env_id)
    env.reset(seed=2, options={"task": task})
    data = env.unwrapped.data
    rng = np.random.default_rng(3)
    saw_contact = False
    for _ in range(40):
        a = rng.normal(0.0, 1.0, 8)
        xy0 = data.body("torso").xpos[:2].copy()
        reward, info = _step(env, a)
        xy = data.body("torso").xpos[:2].copy()
        v = (xy - xy0) / 0.05
        if env_id == "AntVel-v0":
            r_task = -abs(v[0] - task.velocity) + 1.0
        elif env_id == "AntDir-v0":
            r_task = task.direction * v[0]
        elif env_id == "AntDir2D-v0":
            r_task = v[0] * math.cos(task.angle) + v[1] * math.sin(task.angle)
        else:
            r_task = -np.abs(xy - np.array(task.goal)).sum() + 4.0
        contact = np.clip(data.cfrc_ext, -1.0, 1.0)
        expected = r_task + 0.05 - 0.005 * np.sum(a**2) - 0.0005 * np.sum(contact**2)
        assert reward == pytest.approx(expected, abs=1e-12)
        assert info["reward_task"] == pytest.approx(r_task, abs=1e-12)
        obs = env.unwrapped._get_obs()
        saw_contact |= bool(np.any(obs[-78:] != 0.0))
    # observation = (qpos[2:] or qpos, qvel, clip(cfrc_ext[1:])), contact forces computed in the step
    position = data.qpos if env_id == "AntGoal-v0" else data.qpos[2:]
    expected_obs = np.concatenate((position, data.qvel, np.clip(data.cfrc_ext[1:], -1, 1).ravel()))
    assert np.array_equal(env.unwrapped._get_obs(), expected_obs)
    assert env.observation_space.shape == ((107,) if env_id == "AntGoal-v0" else (105,))
    assert saw_contact, "cfrc_ext is never filled in: the rnePostConstraint trigger is missing"
    env.close()


def test_ant_terminates_only_when_asked() -> None:
    env = envs.make("AntVel-v0", terminate_when_unhealthy=True, healthy_z_range=(0.2, 0.3))
    env.reset(seed=0)
    _, _, terminated, _, _ = env.step(np.zeros(8))  # torso starts at z ≈ 0.75 > 0.3
    assert terminated
    env.close()


def test_navigation_dynamics_clipping_and_rewards() -> None:
    env = envs.make("Navigation2D-v0")
    obs, _ = env.reset(seed=0, options={"task": GoalTask((0.3, -0.2))})
    assert obs.dtype == np.float32 and obs.tolist() == [0.0, 0.0]
    obs, reward, _, _, info = env.step(np.array([1.0, -0.05]))  # x clipped to 0.1
    assert obs == pytest.approx([0.1, -0.05]) and reward == pytest.approx(-math.hypot(0.2, 0.15))
    assert info["distance"] == pytest.approx(-reward)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    sparse = envs.make("Navigation2DSparse-v0", goal_radius=0.15)
    sparse.reset(options={"task": GoalTask((0.3, 0.0))})
    rewards = [sparse.step(np.array([0.1, 0.0]))[1] for _ in range(4)]
    assert rewards == [0.0, 1.0, 1.0, 1.0]  # 0.2 away, then within 0.15: x = 0.2, 0.3, 0.4


def test_dynamics_task_changes_the_model_and_the_trajectory() -> None:
    env = envs.make("HalfCheetahRandParams-v0")
    family = env.unwrapped
    base_mass = family.model.body_mass.copy()
    base_damping = family.model.dof_damping.copy()
    heavy = DynamicsTask((2.0,) * 7, (0.5,) * 6, 0.5)
    family.set_task(heavy)
    assert np.allclose(family.model.body_mass[1:], 2.0 * base_mass[1:])
    assert np.allclose(family.model.dof_damping[3:], 0.5 * base_damping[3:])
    assert np.allclose(family.model.geom_friction[:, 0], 0.2)
    actions = np.random.default_rng(0).normal(0.0, 1.0, (50, 6))

    def rollout(task: DynamicsTask) -> np.ndarray:
        env.reset(seed=5, options={"task": task})
        return np.array([env.step(a)[0] for a in actions])

    default = family.default_task()
    a, b, c = rollout(default), rollout(heavy), rollout(default)
    assert np.abs(a - b).max() > 1e-2  # the dynamics changed
    assert np.array_equal(a, c)  # and changing back restores them exactly
    assert np.array_equal(family.model.body_mass, base_mass)
    env.close()


def test_compiling_gymnasium_models_leaves_no_mujoco_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        envs.make("HalfCheetahVel-v0").close()
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    # MuJoCo deprecated the attribute of gymnasium's half_cheetah.xml in 3.16: its message is a Python warning
    settotalmass = [w for w in caught if "settotalmass" in str(w.message)]
    assert all(w.category is DeprecationWarning for w in settotalmass)
    version = tuple(int(part) for part in mujoco.__version__.split(".")[:2])
    assert bool(settotalmass) == (version >= (3, 16))


def test_navigation_renders_rgb_arrays() -> None:
    env = envs.make("Navigation2D-v0", render_mode="rgb_array")
    env.reset(options={"task": GoalTask((0.5, 0.5))})
    env.step(np.array([-0.1, -0.1]))
    frame = env.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    green = (frame[..., 1] > 150) & (frame[..., 0] < 100)
    blue = (frame[..., 2] > 150) & (frame[..., 0] < 100)
    assert green.any() and blue.any()
    ys, xs = np.nonzero(green)
    assert xs.mean() > 128 and ys.mean() < 128  # goal upper right
    ys, xs = np.nonzero(blue)
    assert xs.mean() < 128 and ys.mean() > 128  # agent lower left
    with pytest.raises(ValueError, match="render_mode"):
        envs.make_unwrapped("Navigation2D-v0", render_mode="depth_array")


_RENDER_SCRIPT = """
import numpy as np, envs
env = envs.make("rl_alphamaml/HalfCheetahVel-v0", render_mode="rgb_array", width=64, height=48)
env.reset(seed=0)
env.step(np.zeros(6))
frame = env.render()
assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8, frame.shape
assert frame.std() > 1.0
env.close()
print("rendered")
"""


def test_mujoco_families_render_rgb_arrays_offscreen() -> None:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _RENDER_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0 and ("OpenGL" in proc.stderr or "EGL" in proc.stderr or "gladLoad" in proc.stderr):
        pytest.skip(f"no offscreen OpenGL on this machine (MUJOCO_GL={env['MUJOCO_GL']}): {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr
    assert "rendered" in proc.stdout


def test_envs_imports_only_gymnasium_mujoco_numpy() -> None:
    # static: every import in envs/ is the standard library, gymnasium, mujoco, numpy or envs itself
    import ast

    # metaworld: the optional extra, which envs/metaworld.py imports only when a Meta-World family is made
    allowed = {"gymnasium", "mujoco", "numpy", "envs", "__future__", "metaworld"} | set(sys.stdlib_module_names)
    for path in sorted((ROOT / "envs").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed, f"{path.name} imports {roots}"
    # dynamic: importing envs and using every family pulls in no torch, rl_alphamaml or agents
    script = (
        "import sys, numpy as np, envs\n"
        "for eid in envs.FAMILY_IDS:\n"
        "    if 'MetaWorldML1' not in eid and 'MetaWorld' in eid:\n"
        "        continue  # the module of ML1's, whose goal tables take 10 s (ML10) and 45 s (ML45) to build\n"
        "    try:\n"
        "        env = envs.make(eid)\n"
        "    except envs.MissingDependencyError:\n"
        "        continue  # Meta-World without the metaworld extra\n"
        "    env.reset(seed=0); env.step(env.action_space.sample())\n"
        "b = envs.BatchedEnv('AntVel-v0', 2); b.reset(b.sample_tasks(2, np.random.default_rng(0)), 0)\n"
        "b.step(np.zeros((2, 8)))\n"
        "bad = sorted({'torch', 'rl_alphamaml', 'agents', 'stable_baselines3'} & set(sys.modules))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_navigation_goal_tolerance_ends_the_episode_at_the_goal() -> None:
    # The references' convention: done once |x − g_x| < tol and |y − g_y| < tol after a move.
    env = envs.make("Navigation2D-v0", goal_tolerance=0.01)
    env.reset(options={"task": GoalTask((0.2, 0.005))})
    flags = [env.step(np.array([0.1, 0.0]))[2] for _ in range(2)]
    assert flags == [False, True]  # x = 0.1 (0.1 away), then x = 0.2 (0.005 off in y)
    plain = envs.make("Navigation2D-v0")
    plain.reset(options={"task": GoalTask((0.2, 0.005))})
    assert not any(plain.step(np.array([0.1, 0.0]))[2] for _ in range(3))
    with pytest.raises(ValueError, match="goal_tolerance"):
        envs.make("Navigation2D-v0", goal_tolerance=0.0)
