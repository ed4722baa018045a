"""Overhead of the Ray [1] sampler backend on one machine, and what it implies for N machines.

Measured in the same run, on the same machine, at the RL setting of the issue (meta-batch 20 × 10 episodes
× horizon 200 = 40,000 environment steps per sampling phase):

  * sampling phases (θ shared by all tasks, then per-task θ'ᵢ) with the local backend (every core to MuJoCo)
    and with the Ray backend (one actor per core) — the ratio is the backend's overhead on one machine;
  * one actor alone versus the local backend on one core: the per-actor throughput the estimate scales;
  * the bytes each phase sends (parameters) and receives (trajectories);
  * whole Alpha-MAML [2] meta-iterations with each backend (sampling plus the learner's own compute).

From these it writes a scaling estimate: with N machines of C cores, a phase takes about
``steps / (N·C·r_actor) + bytes / bandwidth + t_fixed`` and an iteration adds the learner's compute.

Usage::

    python benchmarks/ray_sampler.py
    python benchmarks/ray_sampler.py --repeats 2 --families HalfCheetahVel

Writes ``benchmarks/results/ray_sampler.{json,md}``.

References:
    [1] Moritz, Nishihara, Wang et al., "Ray: A Distributed Framework for Emerging AI Applications", OSDI 2018.
        https://arxiv.org/abs/1712.05889
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

from agents.policy import GaussianMLPPolicy
from agents.ray_sampler import RaySampler
from agents.sampler import Sampler
from rl_alphamaml import seeding
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.meta import expand_params

import results_io

ROOT = Path(__file__).resolve().parents[1]
TASKS, EPISODES = 20, 10
CONFIGS = {"HalfCheetahVel": "halfcheetah_vel", "AntVel": "ant_vel", "Navigation2D": "navigation2d"}
#: the simulator the phases are timed on (the env's default model) pinned in the iterations' configs, whose Ant
#: default is the paper's model
SAME_MODEL = {"AntVel": ["env.model=v5"]}
NETWORKS = {"1 Gbit/s": 125e6, "10 Gbit/s": 1.25e9}


def time_phases(sampler: Any, policy: GaussianMLPPolicy, repeats: int) -> dict[str, float]:
    """Median seconds of a shared-θ phase and of a per-task-θ' phase, and the bytes each moved."""
    tasks = sampler.sample_tasks(np.random.default_rng(0))
    theta = expand_params(policy.params(), TASKS)
    adapted = {k: v + 0.01 * torch.randn(v.shape) for k, v in theta.items()}
    sampler.sample(policy, theta, tasks, (0, 0))  # warm-up (and policy transfer)
    out: dict[str, float] = {}
    for name, params in (("shared", theta), ("per_task", adapted)):
        times, sent, received = [], [], []
        for r in range(repeats):
            s0, r0 = getattr(sampler, "bytes_sent", 0), getattr(sampler, "bytes_received", 0)
            t0 = time.perf_counter()
            episodes = sampler.sample(policy, params, tasks, (1, r))
            times.append(time.perf_counter() - t0)
            sent.append(getattr(sampler, "bytes_sent", 0) - s0)
            received.append(getattr(sampler, "bytes_received", 0) - r0)
        out[f"{name}_s"] = statistics.median(times)
        out[f"{name}_bytes_sent"] = statistics.median(sent)
        out[f"{name}_bytes_received"] = statistics.median(received)
        out["steps"] = episodes.num_steps
    return out


def time_iterations(config_name: str, backend: list[str], repeats: int) -> dict[str, float]:
    """Median seconds of an Alpha-MAML meta-iteration and of its sampling part."""
    config, kind = load_experiment_config(
        ROOT / "configs" / f"{config_name}.yaml",
        [f"train.meta_batch={TASKS}", f"sampler.episodes={EPISODES}", *backend],
    )
    experiment = kind.build(config, None)
    try:
        iteration, sampling = [], []
        for it in range(repeats + 1):
            tasks = experiment.sampler.sample_tasks(seeding.rng(0, "tasks", it))
            out = experiment.learner.iteration(tasks, (0, it))
            if it:
                iteration.append(out["time/iteration"])
                sampling.append(out["time/sampling"])
        return {"iteration_s": statistics.median(iteration), "sampling_s": statistics.median(sampling)}
    finally:
        experiment.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", nargs="+", default=["HalfCheetahVel", "AntVel"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ray_sampler")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    t0 = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             configure_logging=False)
    ray_start_s = time.perf_counter() - t0
    torch.manual_seed(0)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} with {cores} CPUs, {platform.python_version()}, ray {ray.__version__}",
        "setting": f"meta-batch {TASKS} × {EPISODES} episodes × the family's horizon; medians of {args.repeats}",
        "ray_start_s": ray_start_s, "families": {},
    }
    for family in args.families:
        env_id = f"rl_alphamaml/{family}-v0"
        probe = Sampler(env_id, 1, 1, threads=1)
        policy = GaussianMLPPolicy(probe.obs_dim, probe.act_dim, (100, 100))
        probe.close()
        row: dict[str, Any] = {}
        variants = {
            "local_all_cores": ("local", {"threads": cores}),
            "ray_one_actor_per_core": ("ray", {"workers": cores}),
            "local_one_core": ("local", {"threads": 1}),
            "ray_one_actor": ("ray", {"workers": 1}),
        }
        for name, (backend, options) in variants.items():
            sampler = (Sampler if backend == "local" else RaySampler)(env_id, TASKS, EPISODES, **options)
            try:
                row[name] = time_phases(sampler, policy, args.repeats)
            finally:
                sampler.close()
            print(f"{family} {name}: {row[name]}", flush=True)
        snake = CONFIGS[family]
        pin = SAME_MODEL.get(family, [])
        row["iteration_local"] = time_iterations(f"{snake}_alpha", pin, args.repeats)
        row["iteration_ray"] = time_iterations(f"{snake}_alpha", [*pin, "sampler.backend=ray"], args.repeats)
        print(f"{family} iterations: local {row['iteration_local']}, ray {row['iteration_ray']}", flush=True)
        results["families"][family] = row
    ray.shutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results_io.write_text(args.out.with_suffix(".json"), json.dumps(results, indent=2) + "\n")
    report = render(results, cores)
    results_io.write_text(args.out.with_suffix(".md"), report)
    print(report)


def render(results: dict[str, Any], cores: int) -> str:
    lines = ["# Ray sampler backend: overhead on one machine and a scaling estimate\n",
             f"Machine: {results['machine']}. Setting: {results['setting']}. "
             f"Starting the local Ray instance took {results['ray_start_s']:.1f} s (once per run).\n",
             "Command: `python benchmarks/ray_sampler.py`\n",
             "| family | phase | local, all cores (s) | Ray, 1 actor/core (s) | Ray / local | "
             "local 1 core (s) | Ray 1 actor (s) | env steps/s per actor | sent (kB) | received (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for family, row in results["families"].items():
        for phase in ("shared", "per_task"):
            la, ra = row["local_all_cores"][f"{phase}_s"], row["ray_one_actor_per_core"][f"{phase}_s"]
            l1, r1 = row["local_one_core"][f"{phase}_s"], row["ray_one_actor"][f"{phase}_s"]
            steps = row["local_all_cores"]["steps"]
            sent = row["ray_one_actor_per_core"][f"{phase}_bytes_sent"] / 1e3
            received = row["ray_one_actor_per_core"][f"{phase}_bytes_received"] / 1e6
            lines.append(f"| {family} | θ {'shared' if phase == 'shared' else 'per task'} | {la:.2f} | {ra:.2f} | "
                         f"{ra / la:.2f} | {l1:.2f} | {r1:.2f} | {steps / r1:,.0f} | {sent:.0f} | {received:.1f} |")
    lines += ["", "| family | Alpha-MAML iteration, local (s) | with Ray (s) | Ray / local | of which sampling, "
              "local / Ray (s) |", "|---|---|---|---|---|"]
    for family, row in results["families"].items():
        il, ir = row["iteration_local"], row["iteration_ray"]
        lines.append(f"| {family} | {il['iteration_s']:.2f} | {ir['iteration_s']:.2f} | "
                     f"{ir['iteration_s'] / il['iteration_s']:.2f} | {il['sampling_s']:.2f} / {ir['sampling_s']:.2f} |")
    lines += ["", "## Scaling estimate (derived, not measured)", "",
              "A phase on N machines of C cores is modelled as `steps / (N·C·r) + bytes / bandwidth + t₀`: r is "
              "the measured per-actor throughput, bytes the measured trajectories received plus parameters sent, "
              "t₀ the measured fixed cost per phase (Ray with one actor per core minus its pure stepping time). "
              "The learner's own compute (iteration minus sampling, measured) does not shrink with N. Real clusters "
              "add stragglers; treat these as upper bounds on the speed-up.", ""]
    header = "| family | cores C per machine | network | " + " | ".join(f"N={n}" for n in (1, 2, 4, 8, 16)) + " |"
    lines += [header, "|---|---|---|" + "---|" * 5]
    for family, row in results["families"].items():
        steps = row["local_all_cores"]["steps"]
        r = steps / row["ray_one_actor"]["per_task_s"]
        ray_c = row["ray_one_actor_per_core"]["per_task_s"]
        fixed = max(0.0, ray_c - steps / (cores * r))
        moved = row["ray_one_actor_per_core"]["per_task_bytes_received"] + row["ray_one_actor_per_core"][
            "per_task_bytes_sent"]
        il = row["iteration_local"]
        learner = il["iteration_s"] - il["sampling_s"]
        phases = 2  # one inner step: a training and a validation phase per iteration
        for c in (cores, 16):
            for net, bw in NETWORKS.items():
                per_n = []
                for n in (1, 2, 4, 8, 16):
                    phase = steps / (n * c * r) + (moved / bw if n > 1 else 0.0) + fixed
                    per_n.append(phases * phase + learner)
                base = per_n[0]
                cells = " | ".join(f"{t:.2f} s ({base / t:.1f}×)" for t in per_n)
                lines.append(f"| {family} | {c} | {net} | {cells} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    results_io.run(main)
