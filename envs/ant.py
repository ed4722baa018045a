"""Ant task families (target velocity, direction, 2-D direction, goal position) on two simulator models of one robot.

Rewards and task distributions follow the MAML-RL experiments [1, §5.3] as implemented in cbfinn/maml_rl
(rllab) and pytorch-maml-rl (``maml_rl/envs/mujoco/ant.py``). The robot is the same in both models; the
simulator around it is chosen per environment with ``model=`` (``env.model`` in a config):

* ``"v5"`` (the default) — gymnasium's ``Ant-v5``: timestep 0.01 s, ``frame_skip`` 5 (dt 0.05 s),
  MuJoCo's default contacts, gymnasium's observation and reset; velocities are finite differences of the
  torso's position over one control step; no termination unless ``terminate_when_unhealthy=True``.
* ``"maml2017"`` — the Ant the MAML paper [1] ran (cbfinn/maml_rl's rllab ``ant.xml`` and
  ``ant_env_rand*.py``), built here by editing gymnasium's model (:meth:`_AntFamily.edit_spec`):
  timestep 0.02 s with one physics step per control step (dt 0.02 s, so 200 steps are 4 s, not 10),
  softer contacts (``solimp`` 0.8 0.8 0.01), the bent-legs start pose of the model file's ``init_qpos``
  with rllab's Gaussian reset noise, the velocity and position of the robot's centre of mass, rllab's
  125-D observation, simulator outputs of the state *after* the step (rllab calls ``mj_forward`` after
  ``mj_step``), and early termination when the torso height leaves [0.2, 1.0] (on by default).

Both models charge the same shaping terms, ``0.05 − 0.005·‖u‖² − 0.0005·‖clip(cfrc_ext, −1, 1)‖²``; ``u`` is
the action the environment receives (``"v5"``) or the control the motors apply, clip(action, −1, 1)
(``"maml2017"``, as rllab's normalising wrapper clips before its environment charges the cost). The
motors are gymnasium's in both: gear 150 on a control in [−1, 1], the same torque range as rllab's gear 1
on ±150. The kernels are those of :class:`envs.mujoco_family.MujocoFamily`; the two models side by side,
with where each fact comes from, in ``docs/envs.md``.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar, get_args

import mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.spaces import Box

from envs.base import DirectionTasks, GoalTasks, VelocityTasks
from envs.mujoco_family import MujocoFamily, SimViews
from envs.tasks import Direction2DTask, DirectionTask, GoalTask, Task, VelocityTask

__all__ = ["ANT_FAMILIES", "ANT_MODELS", "AntDir2DEnv", "AntDirEnv", "AntGoalEnv", "AntModel", "AntVelEnv"]

TaskT = TypeVar("TaskT", bound=Task)

AntModel = Literal["v5", "maml2017"]
#: the simulator models of the Ant families (``model=``)
ANT_MODELS: tuple[str, ...] = get_args(AntModel)

#: the MAML paper's Ant (cbfinn/maml_rl ``vendor/mujoco_models/ant.xml``): timestep and contact impedance
#: (its geom default ``solref=".02 1"`` is MuJoCo's default too; ``solimp``'s midpoint and power keep
#: MuJoCo's 0.5 and 2, which reproduce the three-number form of the MuJoCo 1.x the paper ran)
MAML2017_TIMESTEP = 0.02
MAML2017_SOLREF = (0.02, 1.0)
MAML2017_SOLIMP = (0.8, 0.8, 0.01, 0.5, 2.0)
#: rllab's reset noise (``MujocoEnv.reset_mujoco``): qpos + 0.01·N(0, 1), qvel + 0.1·N(0, 1)
MAML2017_QPOS_NOISE, MAML2017_QVEL_NOISE = 0.01, 0.1
_TORSO = 1  # body id of the torso, the root of every leg


class _AntFamily(MujocoFamily[TaskT], AntEnv):  # type: ignore[misc]
    """Ant with a MAML-RL task reward (pytorch-maml-rl ``maml_rl/envs/mujoco/ant.py``, rllab ``ant_env_rand*``)::

        r = r_task + 0.05 − 0.005·‖u‖² − 0.0005·‖clip(cfrc_ext, −1, 1)‖²

    (survive bonus 0.05, control cost 0.5·1e-2, contact cost 0.5·1e-3), on one of two simulator models
    (``model=``, see the module docstring).

    ``model="v5"``: velocities and positions are those of the torso (gymnasium's ``main_body``), from
    ``xpos`` as in gymnasium v5. Observation: gymnasium v5's, ``(qpos[2:], qvel, clip(cfrc_ext[1:], −1, 1))``
    ∈ R¹⁰⁵ (AntGoal keeps the x-y position: R¹⁰⁷). The contact forces are those at the start of the last
    physics substep (computed inside ``mj_step``, see :func:`envs.base.load_model`); gymnasium v5 instead
    recomputes them after the step, which with Ant's RK4 integrator reads the last Runge–Kutta stage rather
    than a simulated state. Termination: none by default (fixed horizon); with
    ``terminate_when_unhealthy=True`` an episode ends when the state is not finite or the torso height
    leaves ``healthy_z_range`` (default (0.2, 1.0), as in MAML-RL).

    ``model="maml2017"``: velocities and positions are those of the robot's centre of mass (the torso's
    subtree: rllab's ``get_body_comvel("torso")`` and ``get_body_com("torso")``), read after an
    ``mj_forward`` at the new state. Observation: rllab's ``(qpos, qvel, clip(cfrc_ext, −1, 1) of every
    body, the torso's rotation matrix, the centre of mass)`` ∈ R¹²⁵ for every family. Termination on by
    default (``terminate_when_unhealthy=None`` means the model's default).
    """

    _contact_forces = True
    #: keep qpos[0:2] (x, y) out of the observation (model "v5")
    _exclude_xy: ClassVar[bool] = True
    ctrl_cost_weight: ClassVar[float] = 0.5e-2
    contact_cost_weight: ClassVar[float] = 0.5e-3
    survive_reward: ClassVar[float] = 0.05
    model_name: AntModel
    _terminate_when_unhealthy: bool
    _healthy_z_range: tuple[float, float]

    def __init__(
        self,
        task: TaskT | Mapping[str, Any] | None = None,
        *,
        model: AntModel = "v5",
        terminate_when_unhealthy: bool | None = None,
        healthy_z_range: tuple[float, float] = (0.2, 1.0),
        reset_noise_scale: float = 0.1,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_id: int | None = None,
        camera_name: str | None = None,
        task_in_observation: bool = False,
    ) -> None:
        if model not in ANT_MODELS:
            raise ValueError(f"model must be one of {', '.join(ANT_MODELS)}, got {model!r}")
        self.model_name = model
        paper = model == "maml2017"
        self.forward_after_step = paper
        self.sim_outputs = frozenset(("cfrc_ext", "xmat", "subtree_com", "subtree_linvel") if paper
                                     else ("xpos", "cfrc_ext"))
        terminate = paper if terminate_when_unhealthy is None else bool(terminate_when_unhealthy)
        AntEnv.__init__(
            self,
            frame_skip=1 if paper else 5,
            terminate_when_unhealthy=terminate,
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
        if paper:
            # rllab starts from the model file's init_qpos (torso at 0.55, legs bent), not from qpos0
            self.init_qpos = np.array(self.model.numeric("init_qpos").data, dtype=np.float64)
            size = self.model.nq + self.model.nv + 6 * self.model.nbody + 9 + 3
            self.observation_space = Box(low=-np.inf, high=np.inf, shape=(size,), dtype=np.float64)
        self._init_task_observation(task_in_observation)
        self._init_task(task)

    # -- the simulator model ------------------------------------------------------------------------
    def edit_spec(self, spec: mujoco.MjSpec) -> None:
        """``model="maml2017"``: the MAML paper's timestep and contacts on gymnasium's Ant (one physics step
        per control step comes from ``frame_skip=1``), and a sensor that makes ``mj_forward`` compute the
        centre-of-mass velocity (``subtree_linvel``)."""
        if self.model_name != "maml2017":
            return
        spec.option.timestep = MAML2017_TIMESTEP
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_RK4
        for geom in spec.geoms:
            geom.solref = MAML2017_SOLREF
            geom.solimp = MAML2017_SOLIMP
        spec.add_sensor(type=mujoco.mjtSensor.mjSENS_SUBTREELINVEL, objtype=mujoco.mjtObj.mjOBJ_BODY,
                        objname=spec.bodies[_TORSO].name, name="rl_alphamaml_comvel")

    def sample_initial_state(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``"v5"``: gymnasium's (qpos₀ + U(±s), s·N(0, 1)); ``"maml2017"``: rllab's, init_qpos + 0.1·s·N(0, 1)
        and s·N(0, 1) with the default s = 0.1 (so 0.01 and 0.1)."""
        if self.model_name != "maml2017":
            return super().sample_initial_state(rng)
        s = self._reset_noise_scale / 0.1
        qpos = self.init_qpos + s * MAML2017_QPOS_NOISE * rng.standard_normal(self.model.nq)
        qvel = self.init_qvel + s * MAML2017_QVEL_NOISE * rng.standard_normal(self.model.nv)
        return qpos, qvel

    # -- kernels ---------------------------------------------------------------------------------------
    def observe(self, v: SimViews) -> np.ndarray:
        n = v.qpos.shape[0]
        if self.model_name == "maml2017":
            contact = np.clip(v.cfrc_ext, -1.0, 1.0).reshape(n, -1)
            return np.concatenate((v.qpos, v.qvel, contact, v.xmat[:, _TORSO], v.subtree_com[:, _TORSO]), axis=1)
        position = v.qpos[:, 2:] if self._exclude_xy else v.qpos
        contact = np.clip(v.cfrc_ext[:, 1:], -1.0, 1.0).reshape(n, -1)
        return np.concatenate((position, v.qvel, contact), axis=1)

    def pre_step(self, v: SimViews) -> np.ndarray:
        if self.model_name == "maml2017":
            return np.zeros((v.qpos.shape[0], 0))  # the centre-of-mass velocity is read after the step
        return v.xpos[:, _TORSO, :2].copy()

    def transition(
        self, v: SimViews, before: np.ndarray, actions: np.ndarray, params: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if self.model_name == "maml2017":
            xy = v.subtree_com[:, _TORSO, :2]
            xy_velocity = v.subtree_linvel[:, _TORSO, :2]
            control = np.clip(actions, -1.0, 1.0)
        else:
            xy = v.xpos[:, _TORSO, :2]
            xy_velocity = (xy - before) / self.dt
            control = actions
        ctrl_cost = self.ctrl_cost_weight * np.sum(np.square(control), axis=1)
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
        """Along +x (angle 0)."""
        return Direction2DTask(0.0)

    def _sample(self, n: int, rng: np.random.Generator) -> list[Direction2DTask]:
        return [Direction2DTask(float(a)) for a in rng.uniform(0.0, 2.0 * np.pi, size=n)]

    def _check_task(self, task: Direction2DTask) -> None:
        if not 0.0 <= task.angle < 2.0 * np.pi:
            raise self._range_error("direction angle", task.angle, 0.0, "2π)")

    def task_params(self, tasks: Sequence[Direction2DTask]) -> np.ndarray:
        """Each task as the unit vector ``(cos θ, sin θ)``, ``(len(tasks), 2)``."""
        angle = np.array([t.angle for t in tasks], dtype=np.float64)
        return np.stack((np.cos(angle), np.sin(angle)), axis=1).reshape(len(tasks), 2)

    def _task_reward(self, xy_velocity: np.ndarray, xy: np.ndarray, params: np.ndarray) -> np.ndarray:
        return xy_velocity[:, 0] * params[:, 0] + xy_velocity[:, 1] * params[:, 1]


class AntGoalEnv(GoalTasks, _AntFamily[GoalTask]):  # type: ignore[misc]  # gymnasium base vs mixin
    """AntGoal: walk to a goal position in the plane.

    Task reward ``−‖p_xy − g‖₁ + 4`` (p the torso position; on ``model="maml2017"`` the centre of mass);
    task ``g ~ U[low, high]²``, by default U[−3, 3]² (cbfinn/maml_rl ``ant_env_rand_goal.py``, pytorch-maml-rl
    ``AntPosEnv``). The observation keeps the torso's x-y position (R¹⁰⁷; rllab's R¹²⁵ on ``maml2017`` has it
    too), since the reward depends on it. Horizon 200.
    """

    family_name = "AntGoal-v0"
    _exclude_xy = False

    def __init__(
        self, task: GoalTask | Mapping[str, Any] | None = None, *, low: float = -3.0, high: float = 3.0, **kwargs: Any
    ) -> None:
        super().__init__(task, low=low, high=high, **kwargs)

    def _task_reward(self, xy_velocity: np.ndarray, xy: np.ndarray, params: np.ndarray) -> np.ndarray:
        return -np.sum(np.abs(xy - params), axis=1) + 4.0


#: every Ant family class (they take ``model=`` and ``terminate_when_unhealthy=``)
ANT_FAMILIES: tuple[type, ...] = (AntVelEnv, AntDirEnv, AntDir2DEnv, AntGoalEnv)
