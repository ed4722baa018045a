"""HalfCheetah task families (target velocity, direction, dynamics) on gymnasium's v5 MuJoCo model.

Rewards and task distributions follow the MAML-RL experiments [1, §5.3] as implemented in cbfinn/maml_rl
(rllab) and pytorch-maml-rl (``maml_rl/envs/mujoco/half_cheetah.py``); the dynamics family follows the
"rand params" environments of ProMP [2]. The robot, observations, reset noise and physics are gymnasium's
``HalfCheetah-v5`` (``frame_skip`` 5, dt 0.05 s). Horizon 200, no termination. The control cost is charged on
the action the simulator receives; velocities are finite differences of positions over one control step. The
kernels are those of :class:`envs.mujoco_family.MujocoFamily`; formulas in ``docs/envs.md``.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Rothfuss, Lee, Clavera, Asfour & Abbeel, "ProMP: Proximal Meta-Policy Search", ICLR 2019.
        https://arxiv.org/abs/1810.06784
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from envs.base import DirectionTasks, VelocityTasks
from envs.mujoco_family import MujocoFamily, SimViews
from envs.tasks import DirectionTask, DynamicsTask, Task, TaskError, VelocityTask

__all__ = ["HalfCheetahDirEnv", "HalfCheetahRandParamsEnv", "HalfCheetahVelEnv"]

TaskT = TypeVar("TaskT", bound=Task)


class _HalfCheetahFamily(MujocoFamily[TaskT], HalfCheetahEnv):  # type: ignore[misc]
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
        task_in_observation: bool = False,
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
        self._init_task_observation(task_in_observation)
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


class HalfCheetahVelEnv(VelocityTasks, _HalfCheetahFamily[VelocityTask]):  # type: ignore[misc]  # gymnasium base vs mixin
    """HalfCheetahVel [1, §5.3]: run at a target forward velocity.

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


class HalfCheetahDirEnv(DirectionTasks, _HalfCheetahFamily[DirectionTask]):  # type: ignore[misc]  # gymnasium base vs mixin
    """HalfCheetahDir [1, §5.3]: run forward or backward.

    Reward ``d·v_x − 0.05‖a‖²``; task ``d ∈ {−1, +1}`` with probability ½ each
    (pytorch-maml-rl ``HalfCheetahDirEnv``). Horizon 200.
    """

    family_name = "HalfCheetahDir-v0"

    def _task_reward(self, x_velocity: np.ndarray, params: np.ndarray) -> np.ndarray:
        return params[:, 0] * x_velocity


class HalfCheetahRandParamsEnv(_HalfCheetahFamily[DynamicsTask]):
    """HalfCheetahRandParams: the *dynamics* change from task to task, the goal does not.

    Reward ``v_x − 0.05‖a‖²`` (run forward). Task, after ProMP's ``rand_param_envs`` [2]
    with log-uniform multipliers ``b^u``, ``u ~ U[−L, L]``, L = ``log_scale_limit`` (default 3):

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
        """Multipliers per task: one per non-world body, one per actuated joint, one for friction (7 + 6 + 1)."""
        return self._n_bodies + len(self._damped_dofs) + 1

    def default_task(self) -> DynamicsTask:
        """gymnasium's HalfCheetah: every multiplier 1."""
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
        """Tasks as ``(len(tasks), n_params)``: the mass, damping and friction multipliers, in that order."""
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


# ---------------------------------------------------------------------------------------------
# Ant
# ---------------------------------------------------------------------------------------------
