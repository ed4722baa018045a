"""Train, evaluate and ship the meta-trained policies in ``zoo/`` (one small run folder per family).

Each entry is trained through the CLI from a shipped config with the overrides below, evaluated with ``rl-alphamaml
evaluate --video`` on 40 held-out tasks, and copied to ``zoo/<name>/``: the resolved ``config.yaml``, the final
checkpoint only, ``metrics.jsonl``, ``eval/`` (the report and one before|after GIF of the first held-out task) and
``COMMAND`` (the commands that made it). Rendering needs an OpenGL backend (``MUJOCO_GL=egl``, or ``osmesa``);
without one the entry is shipped without its video and the script says so. The training runs live in
``benchmarks/results/zoo_runs/`` and the script is resumable (an interrupted run continues with ``rl-alphamaml train
--resume``); a run folder whose config differs from the entry's is refused, not shipped under the wrong command. An
entry of ``FROM_BENCHMARKS`` ships a run another benchmark trained (``zoo/ant_dir``, ``zoo/ant_vel`` and
``zoo/ant_goal``: ``ant_paper.py``'s best AntDir, AntVel and AntGoal runs, on the paper's Ant;
``zoo/metaworld_reach``: ``metaworld_results.py``'s MAML-TRPO run on Meta-World ML1 reach), with that benchmark's
commands in its ``COMMAND``; it is evaluated and filmed here, the Meta-World entry with Meta-World's protocol (its
50 test goals, the success rate first; build it with the Python that has ``.[metaworld]``). The entries are
MAML-TRPO [1, 2] runs; ``zoo_report.py`` puts them beside the MAML paper.

Usage::

    python benchmarks/build_zoo.py                      # every entry
    python benchmarks/build_zoo.py halfcheetah_dir      # one entry

Writes ``zoo/<name>/`` (each iteration's seconds in its ``metrics.jsonl``).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
from pathlib import Path

from rl_alphamaml.checkpoint import checkpoint_path
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.config import config_yaml
from rl_alphamaml.logging import read_metrics

import results_io
from cli_runs import ROOT, evaluate_once, last_iteration, relative, train_to
from metaworld_results import pct

RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "zoo_runs"
ZOO = ROOT / "zoo"

# name -> (config, overrides, extra evaluate arguments)
ENTRIES: dict[str, tuple[str, list[str], list[str]]] = {
    "halfcheetah_dir": ("halfcheetah_dir", ["train.iterations=200", "train.meta_batch=20", "sampler.episodes=10",
                                            "trpo.max_kl=0.02", "trpo.subsample=0.1"], []),
    "halfcheetah_vel": ("halfcheetah_vel", ["train.iterations=300", "train.meta_batch=20", "sampler.episodes=10",
                                            "trpo.max_kl=0.02", "trpo.subsample=0.1"], []),
    "navigation2d": ("navigation2d", ["train.iterations=200", "trpo.subsample=0.1", "inner.lr=0.5"],
                     ["--episodes", "40", "--inner-lr", "0.5", "0.25"]),
    # The Ant entries run on the paper's Ant (env.model=maml2017) and ship from ant_paper.py (FROM_BENCHMARKS).
}

#: entries shipped from a run another benchmark trained (not retrained here): name -> (the run folder, the command
#: that trains it, that benchmark's results file and the key paths there of the stages whose recorded commands made
#: the run, extra ``evaluate`` arguments)
FROM_BENCHMARKS: dict[str, tuple[Path, str, Path, tuple[tuple[str, ...], ...], list[str]]] = {
    # AntDir on the paper's Ant with the paper's trust region (full curvature), its radius by hypergradient from the
    # paper's max-KL 0.01 (bounded at 0.1), and, from iteration 130, its 40 episodes per task with the bound at 0.3:
    # 36.5 M environment steps, a tenth of the paper's; evaluated with its protocol
    "ant_dir": (RESULTS / "ant_paper_runs"
                / "ant_dir-maml2017-kl0.01-full-radiushd-scale0.1-from130-sampler.episodes40-trpo.max_kl_max0.3",
                "python benchmarks/ant_paper.py --stages trpo_radius_hd trpo_radius_hd_batch03",
                RESULTS / "ant_paper.json", (("trpo_radius_hd",), ("trpo_radius_hd_batch03",)), ["--episodes", "40"]),
    # AntVel on the paper's Ant with the paper's trust region, its radius by hypergradient from the paper's max-KL
    # 0.01 (bounded at 0.1): 12 M environment steps, a tenth of the paper's; evaluated with its protocol (20 episodes
    # per step)
    "ant_vel": (RESULTS / "ant_paper_runs" / "ant_vel-maml2017-kl0.01-full-radiushd-scale0.1",
                "python benchmarks/ant_paper.py --stages ant_vel_trpo_radius_hd", RESULTS / "ant_paper.json",
                (("ant_vel_trpo_radius_hd",),), ["--episodes", "20"]),
    # AntGoal (not in the paper) trained as AntVel: the paper's Ant and trust region, 24 M environment steps;
    # evaluated with AntVel's protocol (20 episodes per step)
    "ant_goal": (RESULTS / "ant_paper_runs" / "ant_goal-maml2017-kl0.01-full-scale0.1",
                 "python benchmarks/ant_paper.py --stages ant_goal_trpo_paper", RESULTS / "ant_paper.json",
                 (("ant_goal_trpo_paper",),), ["--episodes", "20"]),
    # Meta-World ML1 reach, MAML-TRPO to its plateau (45 iterations, 9.0 M steps), scored as Meta-World scores it
    "metaworld_reach": (RESULTS / "metaworld_runs" / "reach_maml", "python benchmarks/metaworld_results.py",
                        RESULTS / "metaworld.json", (("runs", "reach_maml"),), []),
}
#: the held-out evaluation of every entry, and the entries evaluated otherwise: Meta-World's protocol on all 50 test
#: goals of the class (``--steps`` 1, its default there)
EVALUATE = ["--tasks", "40", "--steps", "3"]
EVALUATE_BY_ENTRY = {"metaworld_reach": ["--protocol", "metaworld", "--tasks", "50"]}
#: the sampler settings of a shipped config.yaml (:func:`shipped_config`)
LOCAL = ["sampler.backend=local", "sampler.address=null", "sampler.workers=0"]
NAMES = [*ENTRIES, *FROM_BENCHMARKS]


def setting(overrides: list[str], key: str) -> str | None:
    return next((o.split("=", 1)[1] for o in overrides if o.startswith(key + "=")), None)


def train_entry(name: str) -> tuple[Path, list[str]]:
    """Train (or resume, or reuse) the run of zoo entry ``name``; returns its folder and ``--set`` values."""
    config, overrides, _ = ENTRIES[name]
    iterations = int(setting(overrides, "train.iterations") or 0)
    if setting(overrides, "train.checkpoint_every") is None:
        overrides = [*overrides, f"train.checkpoint_every={min(25, iterations)}"]
    train_to(RUNS / name, config, overrides, iterations)
    return RUNS / name, overrides


def trained(name: str) -> tuple[Path, list[str], list[str]]:
    """Zoo entry ``name``'s run folder (trained, resumed or reused here, or another benchmark's), the commands that
    trained it, and its extra ``evaluate`` arguments."""
    if name in FROM_BENCHMARKS:
        run_dir, benchmark, results, stages, eval_args = FROM_BENCHMARKS[name]
        recorded = json.loads(results.read_text())
        commands = [relative(functools.reduce(lambda node, key: node[key], path, recorded)["command"])
                    for path in stages]
        return run_dir, [f"{benchmark}, that is:", *commands], eval_args
    config, _, eval_args = ENTRIES[name]
    run_dir, overrides = train_entry(name)
    sets = [x for o in overrides for x in ("--set", o)]
    return run_dir, ["rl-alphamaml " + " ".join(["train", f"configs/{config}.yaml", "--run-dir", f"runs/{name}", *sets])
                     ], eval_args


def shipped_config(run_dir: Path) -> tuple[str, bool]:
    """The run's ``config.yaml`` as the entry ships it, on the local sampler backend, and whether that changed it.
    A run that sampled on Ray (an execution setting: the same episodes) would otherwise need Ray wherever the entry
    is evaluated."""
    config, _ = load_experiment_config(run_dir / "config.yaml")
    if config.sampler.backend == "local":
        return config_yaml(config), False
    return config_yaml(load_experiment_config(run_dir / "config.yaml", LOCAL)[0]), True


def build(name: str) -> None:
    run_dir, commands, eval_args = trained(name)
    evaluate = [*EVALUATE_BY_ENTRY.get(name, EVALUATE), "--video", "--video-tasks", "1", *eval_args]
    data = evaluate_once(run_dir, *evaluate, needs="videos/*.gif")
    last = checkpoint_path(run_dir, last_iteration(run_dir))
    videos = sorted((run_dir / "eval" / "videos").glob("*.gif"))
    out = ZOO / name
    if out.exists():
        shutil.rmtree(out)
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy2(last, out / "checkpoints" / last.name)
    config, relocated = shipped_config(run_dir)
    results_io.write_text(out / "config.yaml", config)
    shutil.copy2(run_dir / "metrics.jsonl", out / "metrics.jsonl")
    (out / "eval").mkdir()
    shutil.copy2(run_dir / "eval" / "adaptation.png", out / "eval" / "adaptation.png")
    if videos:
        (out / "eval" / "videos").mkdir()
        for gif in videos:
            shutil.copy2(gif, out / "eval" / "videos" / gif.name)
    else:
        print(f"{name}: no video (no OpenGL backend? MUJOCO_GL=egl or osmesa); shipped without it", flush=True)
    data["checkpoint"] = f"checkpoints/{last.name}"  # relative to the shipped folder, not this machine's path
    results_io.write_text(out / "eval" / "adaptation.json", json.dumps(data, indent=2))
    rows = data["adaptation"]
    if data.get("metric") == "success_rate":
        held_out = f"Held-out success rate ({data['num_tasks']} tasks, Meta-World's protocol, ± 95 % CI)"
        table = "\n".join(f"#   after {r['steps']} steps: {pct(r)}" for r in rows)
    else:
        held_out = f"Held-out return ({data['num_tasks']} tasks, ± 95 % CI)"
        table = "\n".join(f"#   after {r['steps']} steps: {r['mean']:.1f} ± {r['ci95']:.1f}" for r in rows)
    metrics = read_metrics(run_dir)
    steps, iterations = sum(row.get("time/env_steps", 0) for row in metrics), len(metrics)
    run = f"runs/{name}" if name in ENTRIES else "RUN"
    results_io.write_text(
        out / "COMMAND",
        "# How this folder was made (python benchmarks/build_zoo.py " + name + "):\n"
        + "".join(("# " if c.startswith("python ") else "") + c + "\n" for c in commands)
        + "rl-alphamaml " + " ".join(["evaluate", run, *evaluate]) + "\n"
        "# then the final checkpoint, config.yaml, metrics.jsonl and eval/ (report, plot, video) were copied here"
        + (f" ({', '.join(LOCAL)} in config.yaml: the run sampled on Ray, the same episodes)" * relocated) + ".\n"
        f"# Meta-training: {iterations} iterations, {steps / 1e6:.1f} M environment steps.\n"
        f"# {held_out}:\n" + table + "\n"
    )
    print(f"wrote {out}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=NAMES, help=f"entries (default all: {', '.join(NAMES)})")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        parser.error(f"unknown entries {unknown}; choose from {NAMES}")
    for name in args.names:
        if name in FROM_BENCHMARKS and not (FROM_BENCHMARKS[name][0] / "checkpoints").is_dir():
            parser.error(f"{name} ships a run of `{FROM_BENCHMARKS[name][1]}`: run that first")
    for name in args.names:
        build(name)


if __name__ == "__main__":
    results_io.run(main)
