"""Load a meta-trained policy from the zoo, adapt it to a goal of your choosing and film it before and after.

``zoo/halfcheetah_vel`` is a complete run folder (config, final checkpoint, metrics, evaluation): a
HalfCheetah meta-trained with MAML-TRPO to run at whatever target velocity a task asks, in [0, 2] m/s. This
script rebuilds the run's experiment from its ``config.yaml``, loads the checkpoint, gives the policy one
task — the target velocity ``--velocity`` — and adapts it the way ``rl-alphamaml evaluate`` does: episodes of
the current policy on that task, one policy-gradient step with the meta-learned α, fresh episodes after each
step. It prints the sampled episodes' mean return after 0…K steps, then renders one episode with θ (before)
and one with θ′ (after), side by side, to an animated GIF.

Rendering the MuJoCo robots offscreen needs a GL backend: ``MUJOCO_GL=egl`` (with a GPU, or Mesa's EGL) or
``MUJOCO_GL=osmesa`` (``apt-get install libosmesa6``). Without a display and without ``MUJOCO_GL`` this
script tries ``egl``; where rendering does not work it prints the numbers and one line saying why.

Usage::

    python examples/zoo_policy.py --velocity 1.7          # 10 episodes per step, 200-step GIF: ~20 s here
    python examples/zoo_policy.py --velocity 1.7 --tiny   # 2 episodes of 20 steps: seconds
"""

from __future__ import annotations

import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"  # read when MuJoCo is imported, so before the imports below

from rl_alphamaml.rendering import guard_gl_backend

guard_gl_backend()  # a MUJOCO_GL that cannot load must not stop `import mujoco` (the numbers need it)

import argparse  # noqa: E402 (after MUJOCO_GL is settled)
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

from agents.policy import task_params  # noqa: E402
from agents.trainer import RLExperiment  # noqa: E402
from agents.video import check_rendering, render_episode  # noqa: E402
from envs import VelocityTask  # noqa: E402
from rl_alphamaml import seeding  # noqa: E402
from rl_alphamaml.checkpoint import latest_checkpoint, load_checkpoint, restore_state  # noqa: E402
from rl_alphamaml.cli import load_experiment_config  # noqa: E402
from rl_alphamaml.rendering import RenderingUnavailableError, encode_gif, label_frame, side_by_side  # noqa: E402

ZOO = Path(__file__).resolve().parents[1] / "zoo"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--velocity", type=float, default=1.7, help="the target velocity in m/s, in [0, 2]")
    parser.add_argument("--steps", type=int, default=1, help="inner gradient steps (default 1)")
    parser.add_argument("--out", default="runs/examples/zoo_policy.gif", help="where to write the GIF")
    parser.add_argument("--tiny", action="store_true", help="a few seconds' budget (what the tests run)")
    args = parser.parse_args(argv)

    run = ZOO / "halfcheetah_vel"
    # The run's own config; --tiny shortens episodes and samples fewer of them (the policy is the same).
    overrides = ["sampler.episodes=2", "env.horizon=20"] if args.tiny else []
    config, _ = load_experiment_config(run / "config.yaml", overrides)
    experiment = RLExperiment(config, num_tasks=1)  # a sampler for one task at a time
    try:
        checkpoint = latest_checkpoint(run)
        restore_state(experiment, load_checkpoint(checkpoint, kind="rl"), checkpoint)
        learner = experiment.learner
        task = VelocityTask(args.velocity)  # outside the family's [0, 2] the sampler raises a TaskError saying so

        adapted, returns = learner.adapt_params([task], args.steps, (0, seeding.EVALUATION_SAMPLING))
        print(f"{checkpoint}: α {learner.meta.alpha.mean():.3f}; target velocity {args.velocity} m/s, "
              f"{config.sampler.episodes} episodes per step")
        for step, values in enumerate(returns):
            print(f"  after {step} step{'s' if step != 1 else ''}: mean return {values[0]:9.2f}")

        try:
            check_rendering(config.env.id)
        except RenderingUnavailableError as err:
            print(f"no video: {err}")
            return
        size = (120, 80) if args.tiny else (240, 160)
        theta = {n: p.detach() for n, p in learner.meta.params.items()}
        episodes = []
        after = f"after {args.steps} step{'s' if args.steps != 1 else ''}"
        for label, params in (("before", theta), (after, task_params(adapted, 0))):
            frames, total, fps = render_episode(learner.policy, params, config.env.id, task, seed=0,
                                                horizon=config.env.horizon, width=size[0], height=size[1])
            episodes.append([label_frame(f, label) for f in frames])
            print(f"  rendered episode {label}: return {total:.2f} (mean actions)")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(encode_gif(side_by_side(episodes[0], episodes[1]), fps))
        print(f"wrote {out}")
    finally:
        experiment.close()


if __name__ == "__main__":
    main()
