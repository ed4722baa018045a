"""Ant task families (target velocity, direction, 2-D direction, goal position) on gymnasium's v5 MuJoCo model.

Rewards and task distributions follow the MAML-RL experiments [1, §5.3] as implemented in cbfinn/maml_rl
(rllab) and pytorch-maml-rl (``maml_rl/envs/mujoco/ant.py``); the robot, observations, reset noise and physics
are gymnasium's ``Ant-v5`` (``frame_skip`` 5, dt 0.05 s). Horizon 200; an episode terminates only if
``terminate_when_unhealthy=True`` (default ``False``, so that every episode of a meta-batch has the same
length). The control cost is charged on the action the simulator receives; velocities are finite differences
of positions over one control step. The kernels are those of :class:`envs.mujoco_family.MujocoFamily`;
formulas in ``docs/envs.md``.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from envs.base import DirectionTasks, GoalTasks, VelocityTasks
from envs.mujoco_family import MujocoFamily, SimViews
from envs.tasks import Direction2DTask, DirectionTask, GoalTask, Task, VelocityTask

__all__ = ["AntDir2DEnv", "AntDirEnv", "AntGoalEnv", "AntVelEnv"]

TaskT = TypeVar("TaskT", bound=Task)


class _AntFamily(MujocoFamily[TaskT], AntEnv):  # type: ignore[misc]
    """Ant-v5 with a MAML-RL task reward (pytorch-maml-rl ``maml_rl/envs/mujoco/ant.py``)::

        r = r_task + 0.05 − 0.005·‖a‖² − 0.0005·‖clip(cfrc_ext, −1, 1)‖²

    (survive bonus 0.05, control cost 0.5·1e-2, contact cost 0.5·1e-3). Velocities and positions
    are those of the torso (gymnasium's ``main_body``), from ``xpos`` as in gymnasium v5.

    Observation: gymnasium v5's, ``(qpos[2:], qvel, clip(cfrc_ext[1:], −1, 1))`` ∈ R¹⁰⁵ (AntGoal
    keeps the x-y position: R¹⁰⁷). The contact forces are those at the start of the last physics
    substep (computed inside ``mj_step``, see :func:`envs.base.load_model`); gymnasium v5 instead
    recomputes them after the step, which with Ant's RK4 integrator reads the last Runge–Kutta
    stage rather than a simulated state.

    Termination: none by default (fixed horizon, as every slot of a meta-batch must have the
    same length); with ``terminate_when_unhealthy=True`` an episode ends when the state is not
    finite or the torso height leaves ``healthy_z_range`` (default (0.2, 1.0), as in MAML-RL).
    """

    _contact_forces = True
    #: keep qpos[0:2] (x, y) out of the observation
    _exclude_xy: ClassVar[bool] = True
    ctrl_cost_weight: ClassVar[float] = 0.5e-2
    contact_cost_weight: ClassVar[float] = 0.5e-3
    survive_reward: ClassVar[float] = 0.05
    _terminate_when_unhealthy: bool
    _healthy_z_range: tuple[float, float]

    def __init__(
        self,
        task: TaskT | Mapping[str, Any] | None = None,
        *,
        terminate_when_unhealthy: bool = False,
        healthy_z_range: tuple[float, float] = (0.2, 1.0),
        reset_noise_scale: float = 0.1,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_id: int | None = None,
        camera_name: str | None = None,
    ) -> None:
        AntEnv.__init__(
            self,
            terminate_when_unhealthy=bool(terminate_when_unhealthy),
            healthy_z_range=(float(healthy_z_range[0]), float(healthy_z_range[1])),
            reset_noise_scale=reset_noise_scale,
            exclude_current_positions_from_observation=self._exclude_xy,
            include_cfrc_ext_in_observation=True,
            render_mode=render_mode,
            width=width,
            height=height,
            camera_id=camera_id,
            camera_name=camera_name,
        )
        self._init_task(task)

    def observe(self, v: SimViews) -> np.ndarray:
        n = v.qpos.shape[0]
        position = v.qpos[:, 2:] if self._exclude_xy else v.qpos
        contact = np.clip(v.cfrc_ext[:, 1:], -1.0, 1.0).reshape(n, -1)
        return np.concatenate((position, v.qvel, contact), axis=1)

    def pre_step(self, v: SimViews) -> np.ndarray:
        return v.xpos[:, 1, :2].copy()

    def transition(
        self, v: SimViews, before: np.ndarray, actions: np.ndarray, params: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        xy = v.xpos[:, 1, :2]
        xy_velocity = (xy - before) / self.dt
        ctrl_cost = self.ctrl_cost_weight * np.sum(np.square(actions), axis=1)
        contact = np.clip(v.cfrc_ext, -1.0, 1.0)
        contact_cost = self.contact_cost_weight * np.sum(np.square(contact), axis=(1, 2))
        task_reward = self._task_reward(xy_velocity, xy, params)
        reward = task_reward + self.survive_reward - ctrl_cost - contact_cost
        z = v.qpos[:, 2]
        low, high = self._healthy_z_range
        healthy = np.isfinite(v.qpos).all(axis=1) & np.isfinite(v.qvel).all(axis=1) & (z >= low) & (z <= high)
        terminated = ~healthy if self._terminate_when_unhealthy else np.zeros(reward.shape, dtype=bool)
        terms = {
            "x_velocity": xy_velocity[:, 0].copy(),
            "y_velocity": xy_velocity[:, 1].copy(),
            "x_position": xy[:, 0].copy(),
            "y_position": xy[:, 1].copy(),
            "reward_task": task_reward,
            "reward_ctrl": -ctrl_cost,
            "reward_contact": -contact_cost,
            "reward_survive": np.full(reward.shape, self.survive_reward),
        }
        return reward, terminated, terms

    def _task_reward(self, xy_velocity: np.ndarray, xy: np.ndarray, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class AntVelEnv(VelocityTasks, _AntFamily[VelocityTask]):  # type: ignore[misc]  # gymnasium base vs mixin
    """AntVel [1, §5.3]: run forward at a target velocity.

    Task reward ``−|v_x − v*| + 1``; task ``v* ~ U[low, high]``, by default U[0, 3]
    (pytorch-maml-rl ``AntVelEnv``). Horizon 200.
    """

    family_name = "AntVel-v0"

    def __init__(
        self,
        task: VelocityTask | Mapping[str, Any] | None = None,
        *,
        low: float = 0.0,
        high: float = 3.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(task, low=low, high=high, **kwargs)

    def _task_reward(self, xy_velocity: np.ndarray, xy: np.ndarray, params: np.ndarray) -> np.ndarray:
        return -np.abs(xy_velocity[:, 0] - params[:, 0]) + 1.0


class AntDirEnv(DirectionTasks, _AntFamily[DirectionTask]):  # type: ignore[misc]  # gymnasium base vs mixin
    """AntDir [1, §5.3]: run forward or backward along x.

    Task reward ``d·v_x``; task ``d ∈ {−1, +1}`` with probability ½ each (pytorch-maml-rl
    ``AntDirEnv``). Horizon 200.
    """

    family_name = "AntDir-v0"

    def _task_reward(self, xy_velocity: np.ndarray, xy: np.ndarray, params: np.ndarray) -> np.ndarray:
        return params[:, 0] * xy_velocity[:, 0]


class AntDir2DEnv(_AntFamily[Direction2DTask]):
    """AntDir2D: run in a random direction of the plane (the 2-D variant of AntDir).

    Task reward ``v_xy · (cos θ, sin θ)``; task ``θ ~ U[0, 2π)``. Horizon 200.
    """

    task_type = Direction2DTask
    family_name = "AntDir2D-v0"

    def __init__(self, task: Direction2DTask | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(task, **kwargs)
        utils.EzPickle.__init__(self, task, **kwargs)

    def default_task(self) -> Direction2DTask:
        return Direction2DTask(0.0)

    def _sample(self, n: int, rng: np.random.Generator) -> list[Direction2DTask]:
        return [Direction2DTask(float(a)) for a in rng.uniform(0.0, 2.0 * np.pi, size=n)]

    def _check_task(self, task: Direction2DTask) -> None:
        if not 0.0 <= task.angle < 2.0 * np.pi:
            raise self._range_error("direction angle", task.angle, 0.0, "2π)")

    def task_params(self, tasks: Sequence[Direction2DTask]) -> np.ndarray:
        angle = np.array([t.angle for t in tasks], dtype=np.float64)
        return np.stack((np.cos(angle), np.sin(angle)), axis=1).reshape(len(tasks), 2)

    def _task_reward(self, xy_velocity: np.ndarray, xy: np.ndarray, params: np.ndarray) -> np.ndarray:
        return xy_velocity[:, 0] * params[:, 0] + xy_velocity[:, 1] * params[:, 1]


class AntGoalEnv(GoalTasks, _AntFamily[GoalTask]):  # type: ignore[misc]  # gymnasium base vs mixin
    """AntGoal: walk to a goal position in the plane.

    Task reward ``−‖p_xy − g‖₁ + 4`` (p the torso position); task ``g ~ U[low, high]²``, by
    default U[−3, 3]² (cbfinn/maml_rl ``ant_env_rand_goal.py``, pytorch-maml-rl ``AntPosEnv``).
    The observation keeps the torso's x-y position (R¹⁰⁷), since the reward depends on it.
    Horizon 200.
    """

    family_name = "AntGoal-v0"
    _exclude_xy = False

    def __init__(
        self, task: GoalTask | Mapping[str, Any] | None = None, *, low: float = -3.0, high: float = 3.0, **kwargs: Any
    ) -> None:
        super().__init__(task, low=low, high=high, **kwargs)

    def _task_reward(self, xy_velocity: np.ndarray, xy: np.ndarray, params: np.ndarray) -> np.ndarray:
        return -np.sum(np.abs(xy - params), axis=1) + 4.0
