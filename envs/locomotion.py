"""Goal- and dynamics-parametric locomotion families on gymnasium's v5 MuJoCo models.

The reward functions and task distributions follow the MAML-RL experiments (Finn, Abbeel &
Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks", section 5.3)
as implemented in cbfinn/maml_rl (rllab) and its PyTorch reproduction pytorch-maml-rl
(``maml_rl/envs/mujoco/half_cheetah.py``, ``ant.py``); the dynamics family follows the
"rand params" environments of ProMP (Rothfuss et al. 2019). The robots, observations, reset
noise and physics are gymnasium's ``HalfCheetah-v5`` and ``Ant-v5`` (``frame_skip`` 5, dt 0.05 s).

Conventions shared by all families here (see ``docs/envs.md`` for the formulas):

* fixed horizon (registered ``max_episode_steps`` 200, as in the MAML paper); the HalfCheetah
  families never terminate, the Ant families terminate only if ``terminate_when_unhealthy=True``
  (default ``False``, so that every episode of a meta-batch has the same length);
* the control cost is taken on the raw action (MuJoCo clamps the control to ``[-1, 1]``);
* velocities are finite differences of positions over one control step, as in gymnasium.

Every family computes its observation, reward and termination in vectorised *kernels*
(:meth:`observe`, :meth:`pre_step`, :meth:`transition`) over a leading batch axis; ``step`` calls
them with a batch of one, :class:`envs.batched.BatchedEnv` with all slots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, TypeVar

import mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from envs.base import TaskFamily, load_model
from envs.navigation import _GoalTasks, _UniformRangeTasks
from envs.tasks import (
    Direction2DTask,
    DirectionTask,
    DynamicsTask,
    GoalTask,
    Task,
    TaskError,
    VelocityTask,
)

__all__ = [
    "AntDir2DEnv",
    "AntDirEnv",
    "AntGoalEnv",
    "AntVelEnv",
    "HalfCheetahDirEnv",
    "HalfCheetahRandParamsEnv",
    "HalfCheetahVelEnv",
    "SimViews",
]

TaskT = TypeVar("TaskT", bound=Task)


class SimViews(NamedTuple):
    """Live views of the simulator arrays the kernels read, each with a leading batch axis."""

    qpos: np.ndarray  # (n, nq)
    qvel: np.ndarray  # (n, nv)
    xpos: np.ndarray  # (n, nbody, 3)
    cfrc_ext: np.ndarray  # (n, nbody, 6)


class _MujocoFamily(TaskFamily[TaskT]):
    """Mixin over a gymnasium v5 ``MujocoEnv``: task API, shared kernels, exact stepping.

    Subclasses put it *before* the gymnasium class in their bases.
    """

    #: add the force-sensor trigger so that ``cfrc_ext`` is computed inside ``mj_step``
    _contact_forces: ClassVar[bool] = False

    # attributes provided by gymnasium's MujocoEnv
    model: mujoco.MjModel
    data: mujoco.MjData
    frame_skip: int
    fullpath: str
    width: int
    height: int
    init_qpos: np.ndarray
    init_qvel: np.ndarray
    np_random: np.random.Generator
    render_mode: str | None
    _reset_noise_scale: float
    set_state: Callable[[np.ndarray, np.ndarray], None]

    # -- simulation (overrides of gymnasium's MujocoEnv) ------------------------------------
    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = load_model(self.fullpath, contact_forces=self._contact_forces)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    def _step_mujoco_simulation(self, ctrl: np.ndarray, n_frames: int) -> None:
        # No mj_rnePostConstraint after the step (gymnasium v5 calls it): families that need
        # cfrc_ext get it from inside the step (see envs.base.load_model), which the batched
        # backend reproduces exactly.
        self.data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=n_frames)

    def views(self) -> SimViews:
        """This environment's simulator arrays as a batch of one (live views, no copies)."""
        d = self.data
        return SimViews(d.qpos[None], d.qvel[None], d.xpos[None], d.cfrc_ext[None])

    def sample_initial_state(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Gymnasium v5's reset distribution: qpos0 + U(±s), qvel = s·N(0, 1), s = reset noise."""
        s = self._reset_noise_scale
        qpos = self.init_qpos + rng.uniform(low=-s, high=s, size=self.model.nq)
        qvel = self.init_qvel + s * rng.standard_normal(self.model.nv)
        return qpos, qvel

    def reset_model(self) -> np.ndarray:
        qpos, qvel = self.sample_initial_state(self.np_random)
        self.set_state(qpos, qvel)
        return self._get_obs()

    def _get_obs(self) -> np.ndarray:
        return self.observe(self.views())[0]

    def _get_reset_info(self) -> dict[str, Any]:
        return {"task": self._task}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the robot; ``options={"task": task}`` first sets the task (task or dict)."""
        if options is not None and "task" in options:
            self.set_task(options["task"])
        return super().reset(seed=seed, options=options)  # type: ignore[misc]

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.model.nu,):
            raise ValueError(f"action must have shape ({self.model.nu},), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite, got {a.tolist()}")
        v = self.views()
        before = self.pre_step(v)
        self._step_mujoco_simulation(a, self.frame_skip)
        obs = self.observe(v)[0]
        reward, terminated, terms = self.transition(v, before, a[None], self._params[None])
        info: dict[str, Any] = {k: float(x[0]) for k, x in terms.items()}
        info["task"] = self._task
        if self.render_mode == "human":
            self.render()  # type: ignore[attr-defined]
        return obs, float(reward[0]), bool(terminated[0]), False, info

    # -- vectorised kernels -------------------------------------------------------------------
    def observe(self, v: SimViews) -> np.ndarray:
        """Observations ``(n, obs_dim)`` of the states in ``v``."""
        raise NotImplementedError

    def pre_step(self, v: SimViews) -> np.ndarray:
        """What the reward needs from before the step (copied, since ``v`` is live)."""
        raise NotImplementedError

    def transition(
        self, v: SimViews, before: np.ndarray, actions: np.ndarray, params: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Rewards ``(n,)``, terminated flags ``(n,)`` and reward terms after a step."""
        raise NotImplementedError

    # -- batched-backend hooks (no-ops for goal families) -----------------------------------
    def batch_setup(self, batch: Any) -> None:
        """Prepare a ``mujoco.batch.Batch`` of this family's model (expand per-slot fields)."""

    def batch_apply_tasks(self, batch: Any, ids: np.ndarray, tasks: Sequence[TaskT]) -> None:
        """Apply ``tasks`` to the slots ``ids`` of ``batch`` before their state is reset."""


# ---------------------------------------------------------------------------------------------
# Task distributions shared by the HalfCheetah and Ant families (goals: envs.navigation._GoalTasks)
# ---------------------------------------------------------------------------------------------


class _VelocityTasks(_UniformRangeTasks[VelocityTask]):
    """Mixin: target-velocity tasks ``v* ~ U[low, high]``, checked in range; by default the centre."""

    task_type = VelocityTask

    def default_task(self) -> VelocityTask:
        return VelocityTask(0.5 * (self.low + self.high))

    def _sample(self, n: int, rng: np.random.Generator) -> list[VelocityTask]:
        return [VelocityTask(float(v)) for v in rng.uniform(self.low, self.high, size=n)]

    def _check_task(self, task: VelocityTask) -> None:
        if not self.low <= task.velocity <= self.high:
            raise self._range_error("target velocity", task.velocity, self.low, self.high)

    def task_params(self, tasks: Sequence[VelocityTask]) -> np.ndarray:
        return np.array([[t.velocity] for t in tasks], dtype=np.float64).reshape(len(tasks), 1)


class _DirectionTasks(TaskFamily[DirectionTask]):
    """Mixin: direction tasks ``d ∈ {−1, +1}`` with probability ½ each; by default forward."""

    task_type = DirectionTask

    def __init__(self, task: DirectionTask | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(task, **kwargs)  # type: ignore[call-arg]
        utils.EzPickle.__init__(self, task, **kwargs)  # type: ignore[arg-type]

    def default_task(self) -> DirectionTask:
        return DirectionTask(1)

    def _sample(self, n: int, rng: np.random.Generator) -> list[DirectionTask]:
        return [DirectionTask(int(d)) for d in 2 * rng.integers(0, 2, size=n) - 1]

    def _check_task(self, task: DirectionTask) -> None:
        """Any DirectionTask is valid (its constructor enforces ±1)."""

    def task_params(self, tasks: Sequence[DirectionTask]) -> np.ndarray:
        return np.array([[t.direction] for t in tasks], dtype=np.float64).reshape(len(tasks), 1)


# ---------------------------------------------------------------------------------------------
# HalfCheetah
# ---------------------------------------------------------------------------------------------


# gymnasium annotates MujocoEnv.step's reward as np.float64; ours returns a Python float
class _HalfCheetahFamily(_MujocoFamily[TaskT], HalfCheetahEnv):  # type: ignore[misc]
    """HalfCheetah-v5 with a MAML-RL task reward: ``r = r_task(v_x) − 0.05·‖a‖²``.

    Observation: gymnasium v5's, ``(qpos[1:], qvel)`` ∈ R¹⁷ (the x position is excluded).
    Never terminates.
    """

    #: 0.5 · 1e-1, the control-cost weight of pytorch-maml-rl's HalfCheetahVel/Dir
    ctrl_cost_weight: ClassVar[float] = 0.05

    def __init__(
        self,
        task: TaskT | Mapping[str, Any] | None = None,
        *,
        reset_noise_scale: float = 0.1,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_id: int | None = None,
        camera_name: str | None = None,
    ) -> None:
        HalfCheetahEnv.__init__(
            self,
            reset_noise_scale=reset_noise_scale,
            render_mode=render_mode,
            width=width,
            height=height,
            camera_id=camera_id,
            camera_name=camera_name,
        )
        self._init_family()
        self._init_task(task)

    def _init_family(self) -> None:
        """Hook run after the simulator exists and before the first task is set."""

    def observe(self, v: SimViews) -> np.ndarray:
        return np.concatenate((v.qpos[:, 1:], v.qvel), axis=1)

    def pre_step(self, v: SimViews) -> np.ndarray:
        return v.qpos[:, 0].copy()

    def transition(
        self, v: SimViews, before: np.ndarray, actions: np.ndarray, params: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        x_velocity = (v.qpos[:, 0] - before) / self.dt
        ctrl_cost = self.ctrl_cost_weight * np.sum(np.square(actions), axis=1)
        task_reward = self._task_reward(x_velocity, params)
        reward = task_reward - ctrl_cost
        terms = {"x_velocity": x_velocity, "reward_task": task_reward, "reward_ctrl": -ctrl_cost}
        return reward, np.zeros(reward.shape, dtype=bool), terms

    def _task_reward(self, x_velocity: np.ndarray, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class HalfCheetahVelEnv(_VelocityTasks, _HalfCheetahFamily[VelocityTask]):  # type: ignore[misc]  # see _HalfCheetahFamily
    """HalfCheetahVel (Finn et al. 2017, §5.3): run at a target forward velocity.

    Reward ``−|v_x − v*| − 0.05‖a‖²``; task ``v* ~ U[low, high]``, by default U[0, 2]
    (pytorch-maml-rl ``HalfCheetahVelEnv``). Horizon 200.

    >>> import envs, numpy as np
    >>> env = envs.make("rl_alphamaml/HalfCheetahVel-v0")
    >>> tasks = env.unwrapped.sample_tasks(4, np.random.default_rng(0))
    >>> obs, info = env.reset(seed=0, options={"task": tasks[0]})
    """

    family_name = "HalfCheetahVel-v0"

    def __init__(
        self,
        task: VelocityTask | Mapping[str, Any] | None = None,
        *,
        low: float = 0.0,
        high: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(task, low=low, high=high, **kwargs)

    def _task_reward(self, x_velocity: np.ndarray, params: np.ndarray) -> np.ndarray:
        return -np.abs(x_velocity - params[:, 0])


class HalfCheetahDirEnv(_DirectionTasks, _HalfCheetahFamily[DirectionTask]):  # type: ignore[misc]  # see _HalfCheetahFamily
    """HalfCheetahDir (Finn et al. 2017, §5.3): run forward or backward.

    Reward ``d·v_x − 0.05‖a‖²``; task ``d ∈ {−1, +1}`` with probability ½ each
    (pytorch-maml-rl ``HalfCheetahDirEnv``). Horizon 200.
    """

    family_name = "HalfCheetahDir-v0"

    def _task_reward(self, x_velocity: np.ndarray, params: np.ndarray) -> np.ndarray:
        return params[:, 0] * x_velocity


class HalfCheetahRandParamsEnv(_HalfCheetahFamily[DynamicsTask]):
    """HalfCheetahRandParams: the *dynamics* change from task to task, the goal does not.

    Reward ``v_x − 0.05‖a‖²`` (run forward). Task, after ProMP's ``rand_param_envs``
    (Rothfuss et al. 2019) with log-uniform multipliers ``b^u``, ``u ~ U[−L, L]``, L =
    ``log_scale_limit`` (default 3):

    * ``body_mass_scale`` (7 values, one per body): mass and inertia ×1.5^u, u per body;
    * ``dof_damping_scale`` (6 values, one per actuated joint): joint damping ×1.3^u;
    * ``friction_scale`` (1 value): sliding friction of every geom ×1.5^u.

    Horizon 200. Changing the task changes the compiled model (followed by ``mj_setConst``);
    the new dynamics apply from the next step.
    """

    task_type = DynamicsTask
    family_name = "HalfCheetahRandParams-v0"
    mass_base: ClassVar[float] = 1.5
    damping_base: ClassVar[float] = 1.3
    friction_base: ClassVar[float] = 1.5

    def __init__(
        self,
        task: DynamicsTask | Mapping[str, Any] | None = None,
        *,
        log_scale_limit: float = 3.0,
        **kwargs: Any,
    ) -> None:
        if not log_scale_limit >= 0.0:
            raise ValueError(f"log_scale_limit must be >= 0, got {log_scale_limit}")
        self.log_scale_limit = float(log_scale_limit)
        super().__init__(task, **kwargs)
        utils.EzPickle.__init__(self, task, log_scale_limit=log_scale_limit, **kwargs)

    def _init_family(self) -> None:
        m = self.model
        self._base_mass = m.body_mass.copy()
        self._base_inertia = m.body_inertia.copy()
        self._base_damping = m.dof_damping.copy()
        self._base_friction = m.geom_friction.copy()
        # the actuated hinge joints' dofs (bthigh ... ffoot), in actuator order
        self._damped_dofs = np.array([m.jnt_dofadr[m.actuator_trnid[i, 0]] for i in range(m.nu)], dtype=np.intp)
        self._n_bodies = m.nbody - 1
        self._scratch = mujoco.MjData(m)

    @property
    def n_params(self) -> int:
        return self._n_bodies + len(self._damped_dofs) + 1

    def default_task(self) -> DynamicsTask:
        return DynamicsTask((1.0,) * self._n_bodies, (1.0,) * len(self._damped_dofs), 1.0)

    def _sample(self, n: int, rng: np.random.Generator) -> list[DynamicsTask]:
        lim = self.log_scale_limit
        nb, nd = self._n_bodies, len(self._damped_dofs)
        u = rng.uniform(-lim, lim, size=(n, nb + nd + 1))
        mass = self.mass_base ** u[:, :nb]
        damping = self.damping_base ** u[:, nb : nb + nd]
        friction = self.friction_base ** u[:, -1]
        return [DynamicsTask(tuple(mass[i].tolist()), tuple(damping[i].tolist()), float(friction[i])) for i in range(n)]

    def _check_task(self, task: DynamicsTask) -> None:
        nb, nd = self._n_bodies, len(self._damped_dofs)
        if len(task.body_mass_scale) != nb:
            raise self._length_error("body_mass_scale", nb, len(task.body_mass_scale))
        if len(task.dof_damping_scale) != nd:
            raise self._length_error("dof_damping_scale", nd, len(task.dof_damping_scale))
        lim = self.log_scale_limit
        tol = 1e-12  # b**(±L) computed in floating point
        for name, values, base in (
            ("body_mass_scale", task.body_mass_scale, self.mass_base),
            ("dof_damping_scale", task.dof_damping_scale, self.damping_base),
            ("friction_scale", (task.friction_scale,), self.friction_base),
        ):
            low, high = base**-lim, base**lim
            for v in values:
                if not low * (1 - tol) <= v <= high * (1 + tol):
                    raise self._range_error(name, v, round(low, 6), round(high, 6))

    def _length_error(self, name: str, want: int, got: int) -> TaskError:
        return TaskError(f"{self.family_name}: {name} needs {want} values, got {got}")

    def task_params(self, tasks: Sequence[DynamicsTask]) -> np.ndarray:
        return np.array(
            [(*t.body_mass_scale, *t.dof_damping_scale, t.friction_scale) for t in tasks],
            dtype=np.float64,
        ).reshape(len(tasks), self.n_params)

    def model_fields(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """The model fields of the tasks ``params`` ``(n, n_params)``, each ``(n, ...)``."""
        n = params.shape[0]
        nb, nd = self._n_bodies, len(self._damped_dofs)
        mass = np.repeat(self._base_mass[None], n, axis=0)
        mass[:, 1:] *= params[:, :nb]
        inertia = np.repeat(self._base_inertia[None], n, axis=0)
        inertia[:, 1:] *= params[:, :nb, None]
        damping = np.repeat(self._base_damping[None], n, axis=0)
        damping[:, self._damped_dofs] *= params[:, nb : nb + nd]
        friction = np.repeat(self._base_friction[None], n, axis=0)
        friction[:, :, 0] *= params[:, -1:]
        return {
            "body_mass": mass,
            "body_inertia": inertia,
            "dof_damping": damping,
            "geom_friction": friction,
        }

    def _on_task_set(self, task: DynamicsTask) -> None:
        for name, value in self.model_fields(self._params[None]).items():
            getattr(self.model, name)[...] = value[0]
        mujoco.mj_setConst(self.model, self._scratch)

    def _task_reward(self, x_velocity: np.ndarray, params: np.ndarray) -> np.ndarray:
        return x_velocity

    def batch_setup(self, batch: Any) -> None:
        for name in ("body_mass", "body_inertia", "dof_damping", "geom_friction"):
            batch.expand(name)

    def batch_apply_tasks(self, batch: Any, ids: np.ndarray, tasks: Sequence[DynamicsTask]) -> None:
        for name, value in self.model_fields(self.task_params(tasks)).items():
            batch.expand(name)[ids] = value
        batch.set_const(ids)


# ---------------------------------------------------------------------------------------------
# Ant
# ---------------------------------------------------------------------------------------------


class _AntFamily(_MujocoFamily[TaskT], AntEnv):  # type: ignore[misc]
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


class AntVelEnv(_VelocityTasks, _AntFamily[VelocityTask]):  # type: ignore[misc]  # see _HalfCheetahFamily
    """AntVel (Finn et al. 2017, §5.3): run forward at a target velocity.

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


class AntDirEnv(_DirectionTasks, _AntFamily[DirectionTask]):  # type: ignore[misc]  # see _HalfCheetahFamily
    """AntDir (Finn et al. 2017, §5.3): run forward or backward along x.

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


class AntGoalEnv(_GoalTasks, _AntFamily[GoalTask]):  # type: ignore[misc]  # see _HalfCheetahFamily
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
