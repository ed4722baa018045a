"""Videos of a meta-trained policy on held-out tasks, before and after adaptation (``evaluate --video``).

For each task the policy runs one episode with the meta-learned θ and one with θ'ᵢ, the parameters
after K inner steps adapted exactly as ``rl-alphamaml evaluate`` adapts them
(:meth:`agents.maml_pg.MAMLPG.adapt_params`: fresh sampled episodes before every first-order step).
Both episodes start from the same seeded initial state in one ``envs.make(env_id, task=…,
render_mode="rgb_array")`` environment per episode, and take the policy's **mean action** (the
deterministic behaviour; ``action="sample"`` draws from π as the training episodes do — with σ near 1 the
clips are mostly noise). The two clips are put side by side, *before* on the left and *after K steps* on
the right, and encoded as one animated GIF per task (see :mod:`rl_alphamaml.rendering`).

Navigation2D draws its frames with numpy; the MuJoCo families need an offscreen GL backend
(``MUJOCO_GL``), which :func:`check_rendering` tries before any work is done.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from gymnasium.envs.mujoco import MujocoEnv
from torch import Tensor

import envs
from agents.maml_pg import MAMLPG
from agents.policy import GaussianMLPPolicy, task_params
from envs.tasks import Task
from rl_alphamaml import seeding
from rl_alphamaml.rendering import (
    Clip,
    RenderingUnavailableError,
    encode_gif,
    label_frame,
    quiet_unraisable,
    side_by_side,
)
from rl_alphamaml.rendering import unavailable as rendering_unavailable

WIDTH, HEIGHT = 240, 160
"""Default frame size of one episode (a side-by-side clip is twice as wide, plus a 4-pixel gap)."""

Action = Literal["mean", "sample"]


def render_kwargs(env_id: str, width: int, height: int) -> dict[str, Any]:
    """Constructor arguments that make ``env_id`` render ``width`` × ``height`` RGB frames.

    The MuJoCo robots are filmed by their model's ``track`` camera, which follows the centre of mass.
    """
    kwargs: dict[str, Any] = {"render_mode": "rgb_array", "width": width, "height": height}
    if issubclass(envs.family_class(env_id), MujocoEnv):
        kwargs["camera_name"] = "track"
    return kwargs


def check_rendering(env_id: str, width: int = WIDTH, height: int = HEIGHT) -> None:
    """Render one frame of ``env_id``; raise :class:`RenderingUnavailableError` saying how to enable rendering.

    MuJoCo's offscreen renderer fails in several ways without a usable GL backend (a RuntimeError naming
    ``MUJOCO_GL``, ``mujoco.FatalError`` "an OpenGL platform library has not been loaded", errors from
    PyOpenGL); all of them end up here as the same clear message.
    """
    problem: RenderingUnavailableError | None = None
    frame: Any = None
    with quiet_unraisable(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. glfw's "The DISPLAY environment variable is missing"
        try:
            env = envs.make(env_id, **render_kwargs(env_id, width, height))
            try:
                env.reset(seed=0)
                frame = env.render()
            finally:
                env.close()
        except Exception as err:
            problem = rendering_unavailable(err)  # keeps the message, not the traceback that holds the viewer
        gc.collect()  # a half-built viewer's __del__ fails too: here, inside quiet_unraisable
    if problem is not None:
        raise problem
    if not isinstance(frame, np.ndarray) or frame.shape != (height, width, 3):
        shape = getattr(frame, "shape", None)
        raise rendering_unavailable(f"{env_id} rendered {type(frame).__name__} of shape {shape}, "
                                    f"not a ({height}, {width}, 3) RGB frame")


@torch.no_grad()
def render_episode(
    policy: GaussianMLPPolicy,
    params: Mapping[str, Tensor],
    env_id: str,
    task: Task,
    seed: int,
    horizon: int | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    action: Action = "mean",
    generator: torch.Generator | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> tuple[list[np.ndarray], float, float]:
    """One episode of the unbatched ``params`` on ``task``: its frames, its return and the env's frame rate.

    The frames are the initial state and the state after every step (horizon + 1 of them, fewer when the
    episode ends early); ``horizon`` ``None`` is the family's, ``env_kwargs`` the family's constructor
    arguments (e.g. ``goal_tolerance``). ``action`` is ``"mean"`` (deterministic) or ``"sample"`` (from
    ``generator``); the environment gets :meth:`GaussianMLPPolicy.env_action` of it.
    """
    env = envs.make(env_id, task=task, max_episode_steps=horizon, **dict(env_kwargs or {}),
                    **render_kwargs(env_id, width, height))
    try:
        obs, _ = env.reset(seed=seed)
        frames = [np.asarray(env.render(), dtype=np.uint8)]
        total = 0.0
        done = False
        while not done:
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            if action == "mean":
                a, _ = policy(x, params)
            else:
                a = policy.sample(params, x, generator)
            obs, reward, terminated, truncated, _ = env.step(policy.env_action(a).numpy().astype(np.float64))
            frames.append(np.asarray(env.render(), dtype=np.uint8))
            total += float(reward)
            done = terminated or truncated
        fps = float(env.metadata.get("render_fps") or 20)
    finally:
        env.close()
    return frames, total, fps


def describe_task(task: Task) -> str:
    """``goal=(0.137, -0.230)``: a task's fields with numbers to three decimals."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        if isinstance(value, (list, tuple)):
            return "(" + ", ".join(fmt(v) for v in value) + ")"
        return str(value)

    return ", ".join(f"{k}={fmt(v)}" for k, v in task.to_dict().items() if k != "kind")


def adaptation_clips(
    learner: MAMLPG,
    env_id: str,
    tasks: Sequence[Task],
    steps: int,
    seed: int,
    horizon: int | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    action: Action = "mean",
    env_kwargs: Mapping[str, Any] | None = None,
    inner_lrs: Sequence[float] | None = None,
) -> list[Clip]:
    """One before|after clip per task: θ on the left, θ'ᵢ after ``steps`` inner steps on the right.

    ``learner``'s sampler must hold ``len(tasks)`` tasks; the adaptation uses the stream
    ``(seed, EVALUATION_SAMPLING)`` as ``evaluate`` does, the episodes of task ``i`` the initial state seeded
    from ``(seed, "video", i)``.
    Clip ``i`` is named ``task<i>_before_after``; its caption gives the task, the returns of the two rendered
    episodes and the mean returns of the sampled episodes the adaptation saw before and after.
    """
    adapted, curve = learner.adapt_params(tasks, steps, (seed, seeding.EVALUATION_SAMPLING), inner_lrs)
    # Rendering steps one simulator on the CPU: the parameters come over from the learner's device.
    adapted = {n: p.to("cpu", torch.float32) for n, p in adapted.items()}
    theta = {n: p.detach().to("cpu", torch.float32) for n, p in learner.meta.params.items()}
    generator = seeding.torch_generator(seed, "video-actions")
    clips = []
    for i, task in enumerate(tasks):
        reset_seed = int(seeding.rng(seed, "video", i).integers(2**31 - 1))
        episodes = {}
        for phase, params in (("before", theta), ("after", task_params(adapted, i))):
            episodes[phase] = render_episode(learner.policy, params, env_id, task, reset_seed, horizon, width,
                                             height, action, generator, env_kwargs)
        (before, ret0, fps), (after, ret1, _) = episodes["before"], episodes["after"]
        after_label = f"after {steps} step{'s' if steps != 1 else ''}"
        frames = side_by_side([label_frame(f, "before") for f in before], [label_frame(f, after_label) for f in after])
        task_text = describe_task(task)
        caption = (f"{task_text}; left: before adaptation (return {ret0:.2f}), right: {after_label} "
                   f"(return {ret1:.2f}); {action} actions. Sampled episodes' mean return "
                   f"{curve[0][i]:.2f} before, {curve[-1][i]:.2f} after")
        clips.append(Clip(f"task{i}_before_after", encode_gif(frames, fps), frames[0].shape[1], frames[0].shape[0],
                          len(frames), caption,
                          {"task": task.to_dict(), "return_before": ret0, "return_after": ret1,
                           "sampled_return_before": curve[0][i], "sampled_return_after": curve[-1][i]}))
    return clips


__all__ = [
    "HEIGHT",
    "WIDTH",
    "RenderingUnavailableError",
    "adaptation_clips",
    "check_rendering",
    "describe_task",
    "render_episode",
    "render_kwargs",
]
