"""The shared base of the MuJoCo locomotion families: vectorised observation, reward and termination kernels
over a leading batch axis (``step`` calls them with a batch of one, :class:`envs.batched.BatchedEnv` with all
slots), and the views of the simulator state they read. The robots are in :mod:`envs.half_cheetah` and
:mod:`envs.ant`; the conventions they share are described there and in ``docs/envs.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple, TypeVar

import mujoco
import numpy as np

from envs.base import TaskFamily, load_model
from envs.tasks import Task

__all__ = ["MujocoFamily", "SimViews"]

TaskT = TypeVar("TaskT", bound=Task)


class SimViews(NamedTuple):
    """Live views of the simulator arrays the kernels read, each with a leading batch axis."""

    qpos: np.ndarray  # (n, nq)
    qvel: np.ndarray  # (n, nv)
    xpos: np.ndarray  # (n, nbody, 3)
    cfrc_ext: np.ndarray  # (n, nbody, 6)


class MujocoFamily(TaskFamily[TaskT]):
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
# Task distributions shared by the HalfCheetah and Ant families (goals: envs.navigation.GoalTasks)
# ---------------------------------------------------------------------------------------------
