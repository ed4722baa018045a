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
from gymnasium.spaces import Box

from envs.base import TaskFamily, load_model
from envs.tasks import Task

__all__ = ["SIM_OUTPUTS", "MujocoFamily", "SimViews"]

TaskT = TypeVar("TaskT", bound=Task)


class SimViews(NamedTuple):
    """Live views of the simulator arrays the kernels read, each with a leading batch axis.

    ``qpos`` and ``qvel`` are state; the rest are outputs of the simulator, filled only for the fields a
    family lists in :attr:`MujocoFamily.sim_outputs` (zeros otherwise, so that the batched backend
    copies out only what the kernels read).
    """

    qpos: np.ndarray  # (n, nq)
    qvel: np.ndarray  # (n, nv)
    xpos: np.ndarray  # (n, nbody, 3)
    cfrc_ext: np.ndarray  # (n, nbody, 6)
    xmat: np.ndarray  # (n, nbody, 9)
    subtree_com: np.ndarray  # (n, nbody, 3)
    subtree_linvel: np.ndarray  # (n, nbody, 3)


#: the simulator outputs a kernel may read, with their trailing shapes (per body)
SIM_OUTPUTS: dict[str, int] = {"xpos": 3, "cfrc_ext": 6, "xmat": 9, "subtree_com": 3, "subtree_linvel": 3}


class MujocoFamily(TaskFamily[TaskT]):
    """Mixin over a gymnasium v5 ``MujocoEnv``: task API, shared kernels, exact stepping.

    Subclasses put it *before* the gymnasium class in their bases.
    """

    #: add the force-sensor trigger so that ``cfrc_ext`` is computed inside ``mj_step``
    _contact_forces: ClassVar[bool] = False
    #: the simulator outputs (keys of :data:`SIM_OUTPUTS`) the kernels read
    sim_outputs: frozenset[str] = frozenset()
    #: run ``mj_forward`` after each control step, so that the outputs describe the new state (the MAML
    #: paper's rllab environments do); otherwise they are those ``mj_step`` computed before its last substep
    forward_after_step: bool = False
    #: append the task's parameters (:meth:`task_params`) to every observation: the oracle of the MAML paper
    #: (cbfinn/maml_rl's ``*_oracle.py`` environments), a policy that is told its task instead of adapting
    task_in_observation: bool = False

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
    observation_space: Box
    _reset_noise_scale: float
    set_state: Callable[[np.ndarray, np.ndarray], None]

    # -- simulation (overrides of gymnasium's MujocoEnv) ------------------------------------
    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = load_model(self.fullpath, contact_forces=self._contact_forces, edit=self.edit_spec)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    def _step_mujoco_simulation(self, ctrl: np.ndarray, n_frames: int) -> None:
        # No mj_rnePostConstraint after the step (gymnasium v5 calls it): families that need
        # cfrc_ext get it from inside the step (see envs.base.load_model), which the batched
        # backend reproduces exactly.
        self.data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=n_frames)
        if self.forward_after_step:
            mujoco.mj_forward(self.model, self.data)

    def edit_spec(self, spec: mujoco.MjSpec) -> None:
        """Change gymnasium's model before it is compiled (see :func:`envs.base.load_model`); none by default."""

    def views(self) -> SimViews:
        """This environment's simulator arrays as a batch of one (live views, no copies)."""
        d = self.data
        return self.sim_views(lambda name: getattr(d, name)[None], 1)

    def sim_views(self, bind: Callable[[str], np.ndarray], n: int) -> SimViews:
        """The views of ``n`` simulations whose field ``name`` is ``bind(name)``, shaped ``(n, ...)``;
        the outputs this family does not read are zeros."""
        nbody = self.model.nbody
        outputs = {
            name: bind(name).reshape(n, nbody, width) if name in self.sim_outputs else np.zeros((n, nbody, width))
            for name, width in SIM_OUTPUTS.items()
        }
        return SimViews(qpos=bind("qpos"), qvel=bind("qvel"), **outputs)

    def sample_initial_state(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Gymnasium v5's reset distribution: qpos0 + U(±s), qvel = s·N(0, 1), s = reset noise."""
        s = self._reset_noise_scale
        qpos = self.init_qpos + rng.uniform(low=-s, high=s, size=self.model.nq)
        qvel = self.init_qvel + s * rng.standard_normal(self.model.nv)
        return qpos, qvel

    def reset_model(self) -> np.ndarray:
        """Start an episode from :meth:`sample_initial_state` (gymnasium's hook); returns the first observation."""
        qpos, qvel = self.sample_initial_state(self.np_random)
        self.set_state(qpos, qvel)
        return self._get_obs()

    def _get_obs(self) -> np.ndarray:
        return self.observation(self.views(), self._params[None])[0]

    def _init_task_observation(self, task_in_observation: bool) -> None:
        """Apply ``task_in_observation`` (families call it once the simulator and the task range exist)."""
        self.task_in_observation = bool(task_in_observation)
        if self.task_in_observation:
            k = self.task_params([self.default_task()]).shape[1]
            size = self.observation_space.shape[0] + k
            self.observation_space = Box(low=-np.inf, high=np.inf, shape=(size,), dtype=np.float64)

    def observation(self, v: SimViews, params: np.ndarray) -> np.ndarray:
        """Observations ``(n, obs_dim)``: :meth:`observe`, followed by the tasks' ``params`` when
        ``task_in_observation``."""
        obs = self.observe(v)
        return np.concatenate((obs, params), axis=1) if self.task_in_observation else obs

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
        """One control step (``frame_skip`` physics steps, then an ``mj_forward`` where the model asks for it),
        with the observation, reward and termination from the family's kernels and the reward terms in ``info``."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.model.nu,):
            raise ValueError(f"action must have shape ({self.model.nu},), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite, got {a.tolist()}")
        v = self.views()
        before = self.pre_step(v)
        self._step_mujoco_simulation(a, self.frame_skip)
        obs = self.observation(v, self._params[None])[0]
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

    # -- tasks that change the model (dynamics families) -----------------------------------
    def model_fields(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """The ``MjModel`` fields the tasks ``params`` ``(n, k)`` set, each ``(n, ...)``; none (an empty dict)
        unless the task changes the dynamics. :class:`envs.batched.BatchedEnv` gives every slot its task's
        values, followed by ``mj_setConst``, on either backend; the family's ``set_task`` must do the same to
        its own model (as :class:`envs.half_cheetah.HalfCheetahRandParamsEnv` does)."""
        return {}

    # -- hooks of BatchedEnv's "batch" backend (no-ops for goal families) ---------------------
    def batch_setup(self, batch: Any) -> None:
        """Prepare a ``mujoco.batch.Batch`` of this family's model: give every slot its own copy of the fields
        of :meth:`model_fields`."""
        for name in self.model_fields(self.task_params([self.default_task()])):
            batch.expand(name)

    def batch_apply_tasks(self, batch: Any, ids: np.ndarray, tasks: Sequence[TaskT]) -> None:
        """Apply ``tasks`` to the slots ``ids`` of ``batch`` before their state is reset: write their
        :meth:`model_fields` and recompute the slots' constants (as ``mj_setConst`` does for the single env)."""
        fields = self.model_fields(self.task_params(tasks))
        for name, value in fields.items():
            batch.expand(name)[ids] = value
        if fields:
            batch.set_const(ids)


# ---------------------------------------------------------------------------------------------
# Task distributions shared by the HalfCheetah and Ant families (goals: envs.navigation.GoalTasks)
# ---------------------------------------------------------------------------------------------
