"""2-D point navigation [1, §5.3] and its sparse-reward variant.

A point agent starts at the origin; its action is a displacement, clipped to ``[−0.1, 0.1]``
per coordinate, added to its position. The goal is sampled uniformly from ``[−0.5, 0.5]²``
(cbfinn/maml_rl ``point_env_randgoal.py``; pytorch-maml-rl ``maml_rl/envs/navigation.py``).
The observation is the position (float32, as in pytorch-maml-rl). Horizon 100.

Episodes end only at the horizon. The MAML-RL code also ends an episode once the agent is within
0.01 of the goal in both coordinates; here the episode continues (a fixed length for every slot
of a meta-batch), which changes the return of an agent that reaches the goal by its remaining
per-step distance, at most 0.01·√2 per step.

The simulation is numpy only; the kernels (:meth:`observe`, :meth:`transition`) are vectorised
over a leading batch axis and shared with :class:`envs.batched.BatchedEnv`.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Rakelly, Zhou, Quillen, Finn & Levine, "Efficient Off-Policy Meta-Reinforcement Learning via
        Probabilistic Context Variables", ICML 2019. https://arxiv.org/abs/1903.08254
    [3] Gupta, Mendonca, Liu, Abbeel & Levine, "Meta-Reinforcement Learning of Structured Exploration
        Strategies", NeurIPS 2018. https://arxiv.org/abs/1802.07245
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces, utils

from envs.base import GoalTasks
from envs.tasks import GoalTask

__all__ = ["Navigation2DEnv", "Navigation2DSparseEnv"]


class Navigation2DEnv(GoalTasks, gym.Env, utils.EzPickle):
    """Navigation2D [1, §5.3]: reach a goal in the plane; reward ``−‖p − g‖₂`` after the move.

    Task ``g ~ U[low, high]²``, by default U[−0.5, 0.5]². Actions are clipped to ±0.1 (the
    action space is ``Box(−0.1, 0.1, (2,))``). ``render_mode="rgb_array"`` draws the goal
    (green), the goal range (grey) and the agent (blue).

    ``goal_tolerance`` (default ``None``: episodes never end early) ends an episode once the agent is within
    that distance of the goal in each coordinate after a move, as the MAML-RL references do with 0.01
    (pytorch-maml-rl's ``Navigation2DEnv``: ``done = |x − g_x| < 0.01 and |y − g_y| < 0.01``); the MAML
    paper's navigation returns were measured that way.

    >>> import envs, numpy as np
    >>> env = envs.make("rl_alphamaml/Navigation2D-v0")
    >>> task = env.unwrapped.sample_tasks(1, np.random.default_rng(0))[0]
    >>> obs, info = env.reset(options={"task": task})
    >>> obs.tolist()
    [0.0, 0.0]
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}  # type: ignore[misc]
    family_name = "Navigation2D-v0"
    max_action: ClassVar[float] = 0.1

    def __init__(
        self,
        task: GoalTask | Mapping[str, Any] | None = None,
        *,
        low: float = -0.5,
        high: float = 0.5,
        goal_tolerance: float | None = None,
        render_mode: str | None = None,
        width: int = 256,
        height: int = 256,
    ) -> None:
        self._set_range(low, high)
        if goal_tolerance is not None and not (np.isfinite(goal_tolerance) and goal_tolerance > 0):
            raise ValueError(f"goal_tolerance must be a positive number or None, got {goal_tolerance!r}")
        self.goal_tolerance = None if goal_tolerance is None else float(goal_tolerance)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        utils.EzPickle.__init__(self, task, low=low, high=high, goal_tolerance=goal_tolerance,
                                render_mode=render_mode, width=width, height=height)
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.observation_space = spaces.Box(low=-np.inf, high=np.inf, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(low=-self.max_action, high=self.max_action, shape=(2,), dtype=np.float32)
        self._state = self.initial_state(1)
        self._init_task(task)

    # -- vectorised kernels ------------------------------------------------------------------
    def initial_state(self, n: int) -> np.ndarray:
        """Start positions ``(n, 2)``: the origin."""
        return np.zeros((n, 2), dtype=np.float64)

    def observe(self, state: np.ndarray) -> np.ndarray:
        """Observations ``(n, 2)`` (float32) of positions ``state`` ``(n, 2)``."""
        return state.astype(np.float32)

    def transition(
        self, state: np.ndarray, actions: np.ndarray, params: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Next positions, rewards ``(n,)`` and reward terms for ``actions`` ``(n, 2)``."""
        moved = state + np.clip(actions, -self.max_action, self.max_action)
        delta = moved - params
        distance = np.sqrt(delta[:, 0] ** 2 + delta[:, 1] ** 2)
        reward = self._reward(distance)
        return moved, reward, {"distance": distance}

    def _reward(self, distance: np.ndarray) -> np.ndarray:
        return -distance

    def terminated(self, state: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Whether each of the positions ``state`` ``(n, 2)`` ends its episode (within ``goal_tolerance`` of
        its goal ``params`` in each coordinate); all ``False`` without a tolerance."""
        if self.goal_tolerance is None:
            return np.zeros(len(state), dtype=bool)
        return np.max(np.abs(state - params), axis=1) < self.goal_tolerance

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Put the agent at the origin; ``options={"task": task}`` first sets the task."""
        super().reset(seed=seed)
        if options is not None and "task" in options:
            self.set_task(options["task"])
        self._state = self.initial_state(1)
        return self.observe(self._state)[0], {"task": self._task}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move by ``action`` (clipped to ±0.1 per coordinate); ``info`` holds ``distance`` and ``task``."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite, got {a.tolist()}")
        self._state, reward, terms = self.transition(self._state, a[None], self._params[None])
        info: dict[str, Any] = {k: float(v[0]) for k, v in terms.items()}
        info["task"] = self._task
        terminated = bool(self.terminated(self._state, self._params[None])[0])
        return self.observe(self._state)[0], float(reward[0]), terminated, False, info

    def render(self) -> np.ndarray | None:
        """An RGB frame ``(height, width, 3)`` drawn with numpy: the goal range, the goal and the agent."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        h, w = self.height, self.width
        img = np.full((h, w, 3), 255, dtype=np.uint8)
        extent = 1.1 * max(abs(self.low), abs(self.high), float(np.max(np.abs(self._state))), 0.1)
        scale = min(h, w) / (2.0 * extent)

        def px(p: np.ndarray) -> tuple[float, float]:
            return w / 2 + p[0] * scale, h / 2 - p[1] * scale

        rows, cols = np.mgrid[0:h, 0:w]
        (x0, y1), (x1, y0) = px(np.array([self.low, self.low])), px(np.array([self.high, self.high]))
        img[(cols >= x0) & (cols <= x1) & (rows >= y0) & (rows <= y1)] = (235, 235, 235)
        gx, gy = px(self._params[:2])  # the goal the kernels use: a subclass's task need not be a GoalTask
        radius = max(3.0, self._goal_marker_radius() * scale)
        img[(cols - gx) ** 2 + (rows - gy) ** 2 <= radius**2] = (40, 170, 60)
        ax, ay = px(self._state[0])
        img[(cols - ax) ** 2 + (rows - ay) ** 2 <= 16.0] = (30, 80, 200)
        return img

    def _goal_marker_radius(self) -> float:
        return 0.02


class Navigation2DSparseEnv(Navigation2DEnv):
    """Navigation2DSparse: Navigation2D with a sparse reward.

    Reward ``1`` when the agent is within ``goal_radius`` (default 0.2) of the goal after the
    move, else ``0``. Same task distribution, dynamics, observation and horizon (100) as
    Navigation2D; the sparse goal disc follows the sparse point-robot tasks of PEARL [2] and MAESN [3].
    """

    family_name = "Navigation2DSparse-v0"

    def __init__(
        self,
        task: GoalTask | Mapping[str, Any] | None = None,
        *,
        goal_radius: float = 0.2,
        **kwargs: Any,
    ) -> None:
        if not goal_radius > 0.0:
            raise ValueError(f"goal_radius must be positive, got {goal_radius}")
        self.goal_radius = float(goal_radius)
        super().__init__(task, **kwargs)
        utils.EzPickle.__init__(self, task, goal_radius=goal_radius, **kwargs)

    def _reward(self, distance: np.ndarray) -> np.ndarray:
        return (distance <= self.goal_radius).astype(np.float64)

    def _goal_marker_radius(self) -> float:
        return self.goal_radius
