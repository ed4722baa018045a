"""Is meta-learning worth it? Meta-trained policies against the obvious alternatives, on the same new tasks.

``rl-alphamaml compare RUN_DIR [OTHER_RUN_DIR …] --tasks N --steps K`` samples N held-out tasks (the
stream ``evaluate`` uses) and measures on exactly those tasks, with the same seeds:

* every run given — labelled from its config: **MAML** (fixed α), **Alpha MAML** [1] (α and/or β by
  hypergradient), **Meta-SGD** (learned α), or **pretrained** (``inner.steps: 0``:
  one policy trained on the task distribution with the same policy-gradient machinery and no inner loop,
  e.g. ``configs/halfcheetah_vel_pretrain.yaml``) — adapted with K inner steps, fresh episodes after each;
* **random init**: the untrained policy (the reference run's architecture and initial weights) adapted the
  same way;
* **PPO from scratch** (stable-baselines3's PPO [2]) trained on each task through its
  registered Gymnasium id with the environment steps the K-step adaptation used, and with multiples of
  them (``--ppo-budgets 1 10 100``), then evaluated on the same number of episodes.

The *reference* run is the first meta-trained run (``inner.steps ≥ 1``); its α adapts the pretrained and
the random-init policies, its ``sampler.episodes`` sets every method's episodes per step (the sample
budget), and its environment id must be every run's. Returns are per-task means over the episodes;
intervals are Student-t 95 % over tasks (:func:`rl_alphamaml.stats.mean_ci95`).

For a family that reports success (Meta-World's), every method's success rate — each task's share of
episodes in which ``info["success"]`` was 1 at some step — is measured on the same episodes beside the return
and gets its own table, JSON entry and plot panel.

Writes ``compare.md`` (tables, the commands that reproduce it), ``compare.json`` (every per-task value)
and ``compare.png`` (return, and success rate where reported, against environment steps per task) to
``--out`` (default ``RUN_DIR/eval/compare``).

References:
    [1] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [2] Schulman, Wolski, Dhariwal, Radford & Klimov, "Proximal Policy Optimization Algorithms", 2017.
        https://arxiv.org/abs/1707.06347
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import envs
from agents.trainer import RLConfig, RLExperiment, evaluate, held_out_tasks
from envs.tasks import Task
from rl_alphamaml.atomic import write_figure_atomic, write_text_atomic
from rl_alphamaml.checkpoint import latest_checkpoint, load_checkpoint, restore_state
from rl_alphamaml.config import build_config, read_yaml
from rl_alphamaml.errors import CheckpointError, UserError
from rl_alphamaml.evaluation import write_outputs
from rl_alphamaml.logging import read_metrics
from rl_alphamaml.rundir import CONFIG_FILE, config_path
from rl_alphamaml.stats import format_ci, json_safe, mean_ci95

METHODS = ("runs", "random", "ppo")
DEFAULT_PPO_BUDGETS = (1.0, 10.0)


@dataclasses.dataclass
class MethodResult:
    """One method's returns: ``values[j][i]`` on task ``i`` at point ``j``, after ``env_steps[j]`` steps/task;
    ``success[j][i]`` the success rate on the same episodes, for a family that reports success."""

    name: str
    family: str  # "adaptation" (points = inner steps 0…K) or "from_scratch" (points = PPO budgets)
    values: list[list[float]]
    env_steps: list[int]
    source: str
    seconds: float
    success: list[list[float]] | None = None

    def rows(self, values: list[list[float]] | None = None) -> list[dict[str, float]]:
        """Per point: mean and 95 % CI half-width over tasks of the returns (or of ``values``, laid out the
        same way); for adaptation also the paired change from step 0 (each task against itself, which removes
        the task-to-task spread) and its CI."""
        out = []
        for j, vals in enumerate(self.values if values is None else values):
            mean, half = mean_ci95(vals)
            row = {"point": j, "env_steps": self.env_steps[j], "mean": mean, "ci95": half, "tasks": len(vals)}
            if self.family == "adaptation":
                first = (self.values if values is None else values)[0]
                row["change"], row["change_ci95"] = mean_ci95([v - v0 for v, v0 in zip(vals, first)])
            out.append(row)
        return out

    def to_json(self) -> dict[str, Any]:
        """The method's summary rows and every per-task value, for ``compare.json``."""
        out = {"name": self.name, "family": self.family, "source": self.source, "seconds": self.seconds,
               "summary": self.rows(), "per_task": self.values}
        if self.success is not None:
            out["success_rate"] = {"summary": self.rows(self.success), "per_task": self.success}
        return out


@dataclasses.dataclass
class Run:
    """A trained ``kind: rl`` run as :func:`load_run` reads it: its folder, config, newest checkpoint's state and
    that checkpoint's iteration."""

    path: Path
    config: RLConfig
    state: dict[str, Any]
    iteration: int

    @property
    def label(self) -> str:
        """What the run is, from its config: MAML, Alpha MAML, Meta-SGD, ProMP, Alpha-ProMP or pretrained."""
        inner, outer = self.config.inner, self.config.outer
        if inner.steps == 0:
            kind = "pretrained (no meta-learning)"
        elif inner.lr_mode == "learned":
            kind = "Meta-SGD"
        elif outer.optimizer == "promp":
            kind = "Alpha-ProMP" if inner.lr_mode == "hd" or outer.lr_mode == "hd" else "ProMP"
        elif inner.lr_mode == "hd" or outer.lr_mode == "hd":
            kind = "Alpha MAML"
        else:
            kind = "MAML"
        return f"{kind} [{self.path.name}]"


def meta_training_steps(run: Run) -> int:
    """Environment steps the run's meta-training took up to its checkpoint (``time/env_steps`` in its log)."""
    return int(sum(r.get("time/env_steps", 0.0) for r in read_metrics(run.path) if r["iteration"] <= run.iteration))


def load_run(path: Path) -> Run:
    """A trained ``kind: rl`` run: its config and newest checkpoint."""
    data = read_yaml(config_path(path))
    if data.get("kind") != "rl":
        raise UserError(f"{path}: compare needs kind: rl runs, this one is kind: {data.get('kind')!r}")
    config = build_config(data, {"rl": RLConfig}, str(path / CONFIG_FILE))
    checkpoint = latest_checkpoint(path)
    payload = load_checkpoint(checkpoint, kind="rl")
    if not isinstance(payload["state"], dict) or not {"policy", "meta"} <= set(payload["state"]):
        raise CheckpointError(f"{checkpoint}: this checkpoint does not match the run's config (no policy and "
                              "meta-optimizer state)")
    return Run(path, config, payload["state"], int(payload["iteration"]))


def _experiment(config: RLConfig, tasks: int, episodes: int) -> RLExperiment:
    config = dataclasses.replace(config, sampler=dataclasses.replace(config.sampler, episodes=episodes))
    return RLExperiment(config, num_tasks=tasks)


def ppo_returns(env_id: str, task: Task, budget: int, episodes: int, seed: int,
                env_kwargs: Mapping[str, Any] | None = None) -> tuple[float, float | None]:
    """Mean return of ``episodes`` stochastic episodes after PPO (SB3 defaults, rollouts sized to the budget)
    trained from scratch on ``task`` for ``budget`` environment steps (``env_kwargs``: the family's
    constructor arguments, as the meta-trained runs used them), and the share of those episodes that succeeded
    (``info["success"]`` 1 at some step) for a family that reports success, else ``None``."""
    from stable_baselines3 import PPO

    env = envs.make(env_id, task=task, **dict(env_kwargs or {}))
    # SB3's defaults, except that a rollout is at most a quarter of a small budget (so PPO updates at least
    # a few times) and a multiple of the minibatch of 64.
    n_steps = 64 * min(32, max(1, budget // 256))
    model = PPO("MlpPolicy", env, n_steps=n_steps, batch_size=64, seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=budget)
    eval_env = envs.make(env_id, task=task, **dict(env_kwargs or {}))
    reports_success = bool(getattr(eval_env.unwrapped, "reports_success", False))
    returns, successes = [], []
    for e in range(episodes):
        obs, _ = eval_env.reset(seed=seed * 1000 + e)
        total, done, succeeded = 0.0, False, False
        while not done:
            action, _ = model.predict(obs, deterministic=False)
            obs, reward, terminated, truncated, info = eval_env.step(action)
            total += float(reward)
            succeeded = succeeded or (reports_success and float(info["success"]) >= 1.0)
            done = terminated or truncated
        returns.append(total)
        successes.append(float(succeeded))
    env.close()
    eval_env.close()
    return float(np.mean(returns)), float(np.mean(successes)) if reports_success else None


def compare(
    run_dirs: Sequence[Path],
    tasks: int,
    steps: int,
    seed: int,
    methods: Sequence[str] = METHODS,
    ppo_budgets: Sequence[float] = DEFAULT_PPO_BUDGETS,
    ppo_tasks: int | None = None,
    progress: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Measure every method on the same ``tasks`` held-out tasks; returns the report's data (see module doc)."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if tasks < 2 or steps < 1:
        raise UserError("--tasks must be at least 2 (for a confidence interval) and --steps at least 1")
    if any(not multiple > 0 for multiple in ppo_budgets) or (ppo_tasks is not None and ppo_tasks < 1):
        raise UserError("--ppo-budgets must be positive multiples and --ppo-tasks at least 1")
    runs = [load_run(Path(p)) for p in run_dirs]
    if not runs:
        raise UserError("compare needs at least one run folder")
    env_ids = {r.config.env.id for r in runs}
    if len(env_ids) > 1:
        raise UserError(f"the runs use different task families ({', '.join(sorted(env_ids))}); compare one family")
    meta_runs = [r for r in runs if r.config.inner.steps >= 1]
    if not meta_runs:
        raise UserError("compare needs at least one meta-trained run (inner.steps >= 1) as the reference")
    ref = meta_runs[0]
    env_id, episodes = ref.config.env.id, ref.config.sampler.episodes
    probe = _experiment(ref.config, tasks, episodes)
    task_list = held_out_tasks(probe, tasks, seed)  # what `evaluate` draws for this seed
    horizon = probe.sampler.horizon
    probe.close()
    per_step = episodes * horizon
    adapt_steps = [j * per_step for j in range(steps + 1)]
    if "ppo" in methods and any(round(m * steps * per_step) < 1 for m in ppo_budgets):
        raise UserError(f"--ppo-budgets: each multiple must give PPO at least one environment step "
                        f"(1× is {steps * per_step} steps here)")
    results: list[MethodResult] = []

    def adapted(name: str, source: str, config: RLConfig, policy_state: Any, meta_state: Any) -> None:
        progress(f"compare: {name}: adapting on {tasks} tasks with {steps} steps")
        started = time.perf_counter()
        experiment = _experiment(config, tasks, episodes)
        try:
            state = {"policy": policy_state or experiment.policy.state_dict(),
                     "meta": meta_state or experiment.meta.state_dict()}
            restore_state(experiment, {"state": state}, source)
            result = evaluate(experiment, tasks, steps, seed)  # on task_list, as `evaluate` measures
        finally:
            experiment.close()
        results.append(MethodResult(name, "adaptation", result.values, adapt_steps, source,
                                    time.perf_counter() - started, result.other_metrics.get("success_rate")))

    if "runs" in methods:
        for run in runs:
            if run.config.inner.steps >= 1:  # its own (meta-learned or adapted) α
                adapted(run.label, str(run.path), run.config, run.state["policy"], run.state["meta"])
            else:  # pretrained: the reference's α, this run's weights
                adapted(run.label, str(run.path), ref.config, run.state["policy"], ref.state["meta"])
    if "random" in methods:
        adapted("random init", f"initial weights of {ref.path}", ref.config, None, None)
    if "ppo" in methods:
        n_ppo = min(tasks, ppo_tasks or tasks)
        for multiple in ppo_budgets:
            budget = round(multiple * steps * per_step)
            scores, started = [], time.perf_counter()
            for i, task in enumerate(task_list[:n_ppo]):
                progress(f"compare: PPO {multiple:g}× ({budget} steps) on task {i + 1}/{n_ppo}")
                scores.append(ppo_returns(env_id, task, budget, episodes, seed + i, ref.config.env.kwargs()))
            success = [s for _, s in scores if s is not None]
            results.append(MethodResult(f"PPO from scratch, {multiple:g}× budget", "from_scratch",
                                        [[r for r, _ in scores]], [budget], "stable-baselines3 PPO",
                                        time.perf_counter() - started, [success] if success else None))
    return {
        "env": env_id, "tasks": [t.to_dict() for t in task_list], "num_tasks": tasks, "steps": steps, "seed": seed,
        "episodes_per_step": episodes, "horizon": horizon, "reference": str(ref.path),
        "runs": {str(r.path): {"label": r.label, "checkpoint_iteration": r.iteration,
                               "meta_training_env_steps": meta_training_steps(r)} for r in runs},
        "methods": [r.to_json() for r in results],
    }


def _adaptation_rows(report: dict[str, Any], cell: Callable[[dict[str, float]], str],
                     change: Callable[[dict[str, float]], str], success: bool = False) -> list[str]:
    """One row per adapting method: its cells after 0…K steps and the paired change 0 → K, of the return or (with
    ``success``) of the success rate; a method without success rates gets no row in the latter."""
    lines = []
    for m in report["methods"]:
        if m["family"] != "adaptation" or (success and "success_rate" not in m):
            continue
        summary = m["success_rate"]["summary"] if success else m["summary"]
        run = report["runs"].get(m["source"])
        meta_steps = f"{run['meta_training_env_steps']:,}" if run else "0"
        lines.append(f"| {m['name']} | {meta_steps} | {summary[-1]['env_steps']:,} | "
                     + " | ".join(cell(r) for r in summary) + f" | {change(summary[-1])} |")
    return lines


def render_markdown(report: dict[str, Any], command: str) -> str:
    """The report's Markdown: adaptation table (and success-rate table where the family reports success), PPO
    table, the commands that reproduce it."""
    k = report["steps"]
    head = ("| method | meta-training env steps | env steps per task | "
            + " | ".join(f"after {j} step{'s' if j != 1 else ''}" for j in range(k + 1))
            + f" | change 0 → {k} (paired) |")
    rule = "|---|---|---|" + "---|" * (k + 2)
    lines = [
        f"# Adaptation on {report['num_tasks']} held-out tasks of {report['env']}",
        "",
        f"Seed {report['seed']}; {report['episodes_per_step']} episodes of horizon {report['horizon']} per inner "
        f"step and per measurement, so K = {k} steps use {k * report['episodes_per_step'] * report['horizon']:,} "
        "environment steps per task. Mean return over tasks ± 95 % confidence interval (Student t).",
        "",
        head,
        rule,
        *_adaptation_rows(report, lambda r: f"{r['mean']:.1f} ± {format_ci(r['ci95'])}",
                          lambda r: f"{r['change']:+.1f} ± {format_ci(r['change_ci95'])}"),
    ]
    if any("success_rate" in m for m in report["methods"]):
        lines += ["", "Success rate on the same episodes (per task, the share of episodes in which the task was "
                  "solved at some step; mean over tasks ± 95 % CI, in %):", "", head, rule,
                  *_adaptation_rows(report, lambda r: f"{100 * r['mean']:.1f} ± {format_ci(100 * r['ci95'])}",
                                    lambda r: f"{100 * r['change']:+.1f} ± {format_ci(100 * r['change_ci95'])}",
                                    success=True)]
    scratch = [m for m in report["methods"] if m["family"] == "from_scratch"]
    if scratch:
        with_success = any("success_rate" in m for m in scratch)
        lines += ["", "| baseline | env steps per task | return |" + (" success rate (%) |" if with_success else "")
                  + " tasks |", "|---|---|---|" + ("---|" if with_success else "") + "---|"]
        for m in scratch:
            r = m["summary"][0]
            cells = [f"{r['mean']:.1f} ± {format_ci(r['ci95'])}"]
            if with_success:
                s = m["success_rate"]["summary"][0] if "success_rate" in m else None
                cells.append(f"{100 * s['mean']:.1f} ± {format_ci(100 * s['ci95'])}" if s else "—")
            lines.append(f"| {m['name']} | {r['env_steps']:,} | {' | '.join(cells)} | {r['tasks']} |")
    lines += ["", "| run | meta-training iterations | meta-training env steps |", "|---|---|---|"]
    for run in report["runs"].values():
        lines.append(f"| {run['label']} | {run['checkpoint_iteration']} | {run['meta_training_env_steps']:,} |")
    lines += ["", "Reproduce:", "", "```bash"]
    for path, run in report["runs"].items():
        lines.append(f"rl-alphamaml train {shlex.quote(str(Path(path) / CONFIG_FILE))} --run-dir NEW_DIR   "
                     f"# {run['label']}, {run['checkpoint_iteration']} iterations")
    lines += [command, "```", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Return (and, for a family that reports success, success rate in a second panel) against environment steps
    per task: adaptation curves and PPO points, with 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = [("return", lambda m: m["summary"])]
    if any("success_rate" in m for m in report["methods"]):
        panels.append(("success rate", lambda m: m["success_rate"]["summary"] if "success_rate" in m else None))
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.2), dpi=120, squeeze=False)
    for ax, (label, rows_of) in zip(axes[0], panels):
        for m in report["methods"]:
            if (rows := rows_of(m)) is None:
                continue
            curve = m["family"] == "adaptation"
            ax.errorbar([max(r["env_steps"], 1) for r in rows], [r["mean"] for r in rows],
                        yerr=[r["ci95"] for r in rows], label=m["name"], marker="o" if curve else "s", capsize=3,
                        linestyle="-" if curve else "none")
        ax.set_xscale("log")
        ax.set_xlabel("environment steps per task (step 0 plotted at 1)")
        ax.set_ylabel(label)
        ax.set_title(f"{report['env']}: {report['num_tasks']} held-out tasks", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    write_figure_atomic(fig, path)


def write(report: dict[str, Any], out: Path, command: str) -> Path:
    """Write ``compare.{json,png,md}`` to ``out``, each atomically; returns the Markdown file. A write that fails
    (a full disk) is one :class:`UserError` (:func:`rl_alphamaml.evaluation.write_outputs`): print the report
    (:func:`render_markdown`) first, so that it cannot be lost."""
    md = out / "compare.md"
    text = render_markdown(report, command) + "\n![adaptation curves](compare.png)\n"
    write_outputs([
        (str(out / "compare.json"), lambda: write_text_atomic(
            out / "compare.json", json.dumps(json_safe({**report, "command": command}), indent=2))),
        (str(out / "compare.png"), lambda: plot(report, out / "compare.png")),
        (str(md), lambda: write_text_atomic(md, text)),
    ], "the tables above hold the results")
    return md
