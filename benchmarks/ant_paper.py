"""Ant as the MAML paper [1] ran it: the action convention on both simulator models, the ceiling, the paper's rows.

Every run is trained through the CLI (``cli_runs.train_to``: resumed when interrupted, reused when done) in
``benchmarks/results/ant_paper_runs/``, with the zoo's budget per iteration for MAML-TRPO [1, 2] (20 tasks × 10
episodes before and after adaptation, max-KL 0.02, ``trpo.subsample`` 0.1; the paper's code: 40 tasks × 40 episodes,
max-KL 0.01, the curvature of every episode) and tanh units. Every setting that differs from
``configs/ant_dir.yaml`` is on the command line, so a run stays the same run when a default changes.

Stages (``--stages``, default all, run in this order):

* ``speed`` — environment steps per second of ``envs.BatchedEnv`` on each model (800 slots, horizon 200, every
  CPU, uniformly random actions in the action space, termination off so that every slot steps every time),
  alternating the models, best of 3; the ratio is of measurements taken back to back.

* ``convention`` — AntDir on each simulator model (``env.model``: ``maml2017``, the paper's Ant; ``v5``,
  gymnasium's Ant-v5) with the paper's actions, clip(a) at σ = 1 over the full torque range
  (``policy.action_scale=1``), against the references' clip(0.1 · a) (``0.1``), 60 iterations each. Compared at
  equal environment steps: each run's training return after one adaptation step, mean of the last 10
  iterations that end within the smallest step count any of the runs reached.
* ``ant_dir`` — MAML-TRPO on the paper's AntDir with the convention that won on that model, up to a tenth of
  the paper's environment steps (36.8 M of 368 M), evaluated with the paper's protocol: 40 held-out goals,
  40 episodes per adaptation step, α as trained, 0-3 steps.
* ``oracle`` — the ceiling of the paper's AntDir, for each action convention: the same policy and outer loop
  told its task (``env.task_in_observation=true``, ``inner.steps=0``, twice the tasks per iteration so that it
  spends the same steps per iteration), as the paper's oracle; evaluated on the same 40 goals without adaptation.
* ``ant_dir_batch`` — the ``ant_dir`` run continued from its peak checkpoint (chosen from its training return) with
  the paper's 40 episodes per task instead of 10: a copy of the run up to that checkpoint, resumed with
  ``--set sampler.episodes=40``, to the same budget (a tenth of the paper's steps, the copied iterations' included).
* ``alpha`` — the ``ant_dir`` run's peak checkpoint adapted with α 0.05, 0.2 and 0.4 instead of the 0.1 it was
  trained with (``evaluate --inner-lr``), on the same goals.
* the variants (``VARIANTS``: ``lvc``, ``alpha_hd``, ``relu``, ``trpo_paper``, ``trpo_radius_hd``,
  ``trpo_radius_hd_03``, ``wide``, ``alpha_maml``) — the ``ant_dir`` run's settings with one difference each
  (ProMP's [3] low-variance curvature estimator; α by hypergradient [4], Alpha MAML's inner rate under MAML-TRPO's
  outer step; the paper's ReLU units; the paper's trust region, max-KL 0.01 with full curvature; that trust region
  with its radius by hypergradient, bounded at 0.1 or at 0.3; a 256 × 256 policy; Alpha MAML itself, Adam's outer
  step with α and β by hypergradient), to the ``ant_dir`` run's peak iteration (130, 10.4 M steps), evaluated as
  ``ant_dir`` with the α each ends with.
* ``trpo_paper_batch`` — the ``trpo_paper`` variant (the best at iteration 130) continued from there with the paper's
  40 episodes per task to the AntDir budget, as ``ant_dir_batch`` continues the ``ant_dir`` run.
* ``trpo_radius_hd_batch`` — the ``trpo_radius_hd`` variant continued the same way (its radius keeps following its
  hypergradient: the radius and the rule's state are in the checkpoint); ``trpo_radius_hd_03_batch`` continues the
  ``trpo_radius_hd_03`` variant (that radius bounded at 0.3 instead of 0.1) the same way, and
  ``trpo_radius_hd_batch03`` continues ``trpo_radius_hd`` with its bound loosened to 0.3 from there on.
* ``ant_vel`` — MAML-TRPO on the paper's AntVel with the zoo's budget (150 iterations, 12 M steps: a tenth of the
  paper's), and its oracle (as ``oracle``, the winning convention only), evaluated with the paper's protocol: 40
  goals, 20 episodes per adaptation step.
* ``ant_vel_trpo_paper`` — the ``ant_vel`` run with the paper's trust region (the ``trpo_paper`` variant's
  settings), same budget and evaluation: does what helped AntDir help AntVel?
* ``ant_vel_trpo_radius_hd`` — the ``ant_vel_trpo_paper`` run with the trust region's radius by hypergradient (the
  ``trpo_radius_hd`` variant's settings), same budget and evaluation: does the radius that lifted AntDir lift AntVel?
* ``ant_vel_trpo_paper_batch`` — that run continued from iteration :data:`VEL_BATCH_FROM` (half its budget) with the
  paper's 20 episodes per task, to the same 12 M steps, as ``trpo_paper_batch`` continues AntDir's.
* ``ant_goal_trpo_paper`` — AntGoal (not in the paper) trained the same way on the paper's model: the paper's trust
  region, 20 tasks × 10 episodes, to :data:`ANT_GOAL_ITERATIONS` (24 M steps, the budget of the former Ant-v5
  ``zoo/ant_goal``), evaluated as AntVel (40 goals, 20 episodes per adaptation step) at the newest and the peak
  checkpoint.
* ``ant_goal_oracle`` — AntGoal's ceiling: its oracle trained with the paper's recipe (as ``oracle_trpo_paper``, for
  AntVel's 550 iterations, 11 M steps), evaluated on the same 40 goals without adaptation.
* ``oracle_trpo_paper`` — the AntDir and AntVel oracles trained as the paper's code trained its own
  (:data:`PAPER_ORACLE_SETS`: TRPO at max-KL 0.01 with full curvature, 100 episodes per iteration, to the
  paper's oracle checkpoints, 39.5 M and 11 M steps), the winning convention only: is the oracle above (max-KL
  0.02, a tenth of the curvature, 12 M steps) below what its simulator allows? Each family's ceiling is the best
  of its oracles.
* ``seeds`` — the recipes that met the paper's rows with seed 0 (AntDir's ``trpo_radius_hd`` continued as
  ``trpo_radius_hd_batch03``; ``ant_vel_trpo_radius_hd``) trained again from each seed of ``--seeds`` (default 1;
  a seed's runs are named ``…-seedS``), each evaluated as its seed-0 run on the same 40 goals (``evaluate --seed``):
  is a row met by the recipe or by seed 0? Whenever there are AntDir seeds, ``seed_split`` sets them side by side
  (training return and σ early and late, the trust region's radius, the held-out return per direction): what
  separates them?
* ``sigma_floor`` — the AntDir recipe with the policy's σ held at or above :data:`SIGMA_FLOOR` (``policy.min_std``)
  from each seed of ``--seeds``, evaluated as ``seeds``: the seed that met the row kept σ there, the others did not.
* ``ppo_oracle`` — the ceiling measured by another learner: stable-baselines3's PPO [5] (its defaults, as
  ``rl-alphamaml compare`` runs it) trained from scratch on each of AntDir's two tasks (forward, backward) of the
  paper's model for :data:`PPO_ORACLE_STEPS`, scored on 40 episodes each. Is the oracle above (trained by the
  meta-learner's own outer loop, told its task) what this simulator allows?

Usage::

    python benchmarks/ant_paper.py                                       # every stage
    python benchmarks/ant_paper.py --stages convention --models maml2017 # part of one stage
    python benchmarks/ant_paper.py --stages seeds --seeds 1 2            # the recipes from seeds 1 and 2

Writes ``benchmarks/results/ant_paper.{md,json,png}``; a stage not run yet keeps what the file had (or is
reported as not run). Wall times are those of this machine (2 cores), summed from the runs' metrics.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
    [3] Rothfuss, Lee, Clavera, Asfour & Abbeel, "ProMP: Proximal Meta-Policy Search", ICLR 2019.
        https://arxiv.org/abs/1810.06784
    [4] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [5] Schulman, Wolski, Dhariwal, Radford & Klimov, "Proximal Policy Optimization Algorithms", 2017.
        https://arxiv.org/abs/1707.06347
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agents.compare import ppo_returns
from envs.batched import default_threads
from envs.tasks import DirectionTask
from rl_alphamaml.checkpoint import checkpoint_path, list_checkpoints
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.logging import read_metrics
from rl_alphamaml.rundir import RunDir
from rl_alphamaml.seeding import evaluation_seed

import results_io
import sampler
from cli_runs import ROOT, cli, evaluate_kept, evaluate_once, last_iteration, relative, train_command, train_to
from maml_paper import PAPER as MAML_PAPER

RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "ant_paper_runs"
WINDOW = 10
#: the zoo's budget per iteration: 20 tasks × 10 episodes of at most 200 steps, before and after adaptation
META_BATCH, HORIZON = 20, 200
COMMON = [f"train.meta_batch={META_BATCH}", "sampler.episodes=10", "trpo.max_kl=0.02", "trpo.subsample=0.1",
          "policy.activation=tanh", "train.checkpoint_every=10"]
MODELS = ("maml2017", "v5")
SCALES = (1.0, 0.1)
STAGES = ("speed", "convention", "ant_dir", "oracle", "ant_dir_batch", "alpha", "lvc", "alpha_hd", "relu", "trpo_paper",
          "trpo_radius_hd", "trpo_radius_hd_03", "wide", "alpha_maml", "trpo_paper_batch", "trpo_radius_hd_batch",
          "trpo_radius_hd_03_batch", "trpo_radius_hd_batch03", "ant_vel", "ant_vel_trpo_paper",
          "ant_vel_trpo_paper_batch", "ant_vel_trpo_radius_hd", "ant_goal_trpo_paper", "ant_goal_oracle",
          "oracle_trpo_paper", "ppo_oracle", "seeds", "sigma_floor")
CONVENTION_ITERATIONS = 60
# Planned: 460 iterations of at most 80,000 steps (36.8 M). Stopped at 263 (21 M): the training return after
# one step peaked at iterations 121-140 (≈ 224) and fell for the next 120 iterations (≈ 145 over 241-260), so
# the rest of the budget would have been spent on a declining run. The newest and the peak checkpoint are
# both evaluated.
ANT_DIR_ITERATIONS = 263
ORACLE_ITERATIONS = 150
#: ``ant_dir_batch``: the AntDir run continued from its peak checkpoint with the paper's 40 episodes per task (4× the
#: batch per iteration), to a tenth of the paper's steps — is the decline the noise of a small batch?
BATCH_EPISODES = 40
#: ``alpha``: the AntDir run's peak checkpoint adapted with other inner rates than the α = 0.1 it was trained with
#: (``evaluate --inner-lr``) — is the rate what keeps one step below the oracle?
TEST_ALPHAS = (0.05, 0.2, 0.4)
#: the variant stages run to the AntDir run's peak iteration (10.4 M steps)
PEAK_ITERATIONS = 130
#: one difference at a time from the AntDir run, each to :data:`PEAK_ITERATIONS` and evaluated as ``ant_dir``:
#: stage → (its run folder's tag, its section's title, its settings, which replace the common ones of the same key)
VARIANTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # ProMP's low-variance curvature estimator in the inner step (it credits the pre-update policy's exploration)
    "lvc": ("lvc", "ProMP's low-variance curvature estimator (inner.estimator=lvc)", ("inner.estimator=lvc",)),
    # α by hypergradient (Alpha MAML's inner rate under the TRPO outer step, the fast log_adam rule): does α find a
    # better value than the paper's 0.1?
    "alpha_hd": ("alphahd", "α by hypergradient (inner.lr_mode=hd, the log_adam rule)",
                 ("inner.lr_mode=hd", "inner.hd_rule=log_adam")),
    # the paper's ReLU units instead of tanh
    "relu": ("relu", "the paper's ReLU units (policy.activation=relu)", ("policy.activation=relu",)),
    # the paper's trust region: max-KL 0.01 with the curvature of every episode (the common settings: 0.02 and a
    # tenth of the episodes) — is the plateau the outer step's size or its noisy curvature?
    "trpo_paper": ("kl0.01-full", "the paper's trust region (trpo.max_kl=0.01, full curvature: trpo.subsample=1)",
                   ("trpo.max_kl=0.01", "trpo.subsample=1")),
    # the paper's trust region with its radius by hypergradient (issue 24's trpo.max_kl_mode: hd, from the paper's
    # 0.01; bounded at 0.1, ten times it, as the line search alone keeps a larger radius safe): does the radius
    # that reached MAML-TRPO's return in 0.88× the steps on Navigation2D get AntDir there sooner too?
    "trpo_radius_hd": ("kl0.01-full-radiushd", "the paper's trust region, its radius by hypergradient "
                       "(trpo.max_kl_mode=hd from 0.01, at most 0.1)",
                       ("trpo.max_kl=0.01", "trpo.subsample=1", "trpo.max_kl_mode=hd", "trpo.max_kl_max=0.1")),
    # the same radius bounded at 0.3: the radius sat at its bound 0.1 for most of both trpo_radius_hd stages, so the
    # bound, not the hypergradient, set the step size there
    "trpo_radius_hd_03": ("kl0.01-full-radiushd0.3", "the paper's trust region, its radius by hypergradient "
                          "(trpo.max_kl_mode=hd from 0.01, at most 0.3)",
                          ("trpo.max_kl=0.01", "trpo.subsample=1", "trpo.max_kl_mode=hd", "trpo.max_kl_max=0.3")),
    # a wider policy (256 × 256): is the 100 × 100 network what caps one step at about 60 % of the oracle?
    "wide": ("wide256", "a wider policy (policy.hidden=[256,256])", ("policy.hidden=[256,256]",)),
    # Alpha MAML as configs/ant_dir_alpha.yaml ships it (Adam outer step, α and β by the normalized hypergradient
    # rule, the β repair) at the same steps as MAML-TRPO: the "Alpha MAML beside MAML-TRPO"
    "alpha_maml": ("alphamaml", "Alpha MAML (Adam outer step, α and β by hypergradient; configs/ant_dir_alpha.yaml's "
                   "rates)", ("outer.optimizer=adam", "outer.lr=0.001", "outer.lr_mode=hd", "outer.lr_min=1e-6",
                              "outer.lr_max=0.05", "inner.lr_mode=hd", "inner.lr_min=1e-4", "inner.lr_max=2.0")),
}
#: the trust-region AntDir runs continued from iteration :data:`PEAK_ITERATIONS` with the paper's batch: stage → (the
#: variant it continues, how the tables and the plot name it, more resume settings)
CONTINUED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "trpo_paper_batch": ("trpo_paper", "the paper's trust region", ()),
    "trpo_radius_hd_batch": ("trpo_radius_hd", "the paper's trust region, its radius by hypergradient", ()),
    "trpo_radius_hd_03_batch": ("trpo_radius_hd_03",
                                "the paper's trust region, its radius by hypergradient at most 0.3", ()),
    # the radius sat at its bound 0.1 for 70 of the continuation's 82 iterations with the 4× batch (a bound of 0.3
    # from the start plateaued in the 10-episode phase): the bound loosened to 0.3 for the continuation alone
    "trpo_radius_hd_batch03": ("trpo_radius_hd",
                               "the paper's trust region, its radius by hypergradient, bounded at 0.3 once continued",
                               ("trpo.max_kl_max=0.3",)),
}
#: AntVel with the zoo's budget: 150 iterations of at most 80,000 steps, 12 M (a tenth of the paper's 120 M)
ANT_VEL_ITERATIONS = 150
#: ``ant_vel_trpo_paper_batch``: the trust-region AntVel run continued from its checkpoint at about half the budget
#: with the paper's 20 episodes per task (its AntVel batch, and its test protocol's), to the same 12 M steps
VEL_BATCH_FROM, VEL_BATCH_EPISODES = 70, 20
#: ``ant_goal_trpo_paper``: 300 iterations of at most 80,000 steps, 24 M — the budget of the Ant-v5 ``zoo/ant_goal``
#: (``build_zoo.py``) it replaces; the paper has no AntGoal, so no paper budget applies
ANT_GOAL_ITERATIONS = 300
#: the paper's protocols (cbfinn/maml_rl ``maml_examples/test_maml_ant_direc.py``, ``test_maml_ant.py``): 40 goals,
#: 40 (AntDir) and 20 (AntVel: 4,000 steps) episodes per adaptation step. Its scripts take the later steps at a
#: hundredth (AntDir) or half (AntVel) of the first step's rate; ours take α at every step, and only the one-step
#: numbers are compared
EVALUATE = ["--tasks", "40", "--steps", "3", "--episodes", "40"]
EVALUATE_VEL = ["--tasks", "40", "--steps", "3", "--episodes", "20"]
EVALUATE_GOAL = EVALUATE_VEL  # AntGoal is not in the paper: AntVel's protocol, the batch it trains on
#: MAML paper, Fig. 5: returns after 0-3 steps, the oracle, the budget (``maml_paper.py``)
PAPER = MAML_PAPER["ant_dir"]
PAPER_VEL = MAML_PAPER["ant_vel"]
#: ``ppo_oracle``: PPO's environment steps per task (each of AntDir's two directions), and its scoring episodes
PPO_ORACLE_STEPS, PPO_ORACLE_EPISODES = 1_000_000, 40
#: the paper's AntDir row through its code's history (cbfinn/maml_rl: ``icml/icml_antdirec_results_maml.pkl`` at
#: commits 7fe27d7, "ICML deadline final state", and 4d41869; the checkpoints ``examples/test_maml_ant_direc.py``
#: loads at 1a55e36): the model of the ICML submission, 20 tasks × 40 episodes at iteration 350 (112 M steps), and the
#: published one, 40 tasks × 40 episodes at iteration 575 (368 M); returns after 0-3 steps
PAPER_SUBMISSION = {"maml": (4.1, 272.6, 337.0, 348.6), "env_steps": 20 * 40 * 200 * 2 * 350}
#: ``seeds``: the recipes that met the paper's rows with seed 0 (AntDir: ``trpo_radius_hd`` continued as
#: ``trpo_radius_hd_batch03``; AntVel: ``ant_vel_trpo_radius_hd``) trained again from other seeds (``--seeds``), each
#: evaluated on seed 0's held-out goals (``evaluate --seed``), so that the runs differ in their training seed only
SEED_RECIPES = {"ant_dir": "trpo_radius_hd_batch03", "ant_vel": "ant_vel_trpo_radius_hd"}
#: the budget: a tenth of the paper's environment steps (AntDir 40 tasks × 40 episodes × 200 steps × 2 phases ×
#: 575 iterations = 368 M)
BUDGET = 0.1
#: where the AntDir seeds are compared: windows of iterations (1-based, inclusive) of the run before it is continued
SPLIT_WINDOWS = ((41, 50), (121, 130))
#: ``sigma_floor``: the AntDir recipe with the policy's σ floored (``policy.min_std``) from each seed of ``--seeds``.
#: Seed 0, which met the paper's row, kept σ near 0.9 over its first 130 iterations and kept improving; seeds 1 and 2
#: let it fall to 0.82-0.83 and levelled off about 65 lower (``seed_split``). Does holding σ there make them climb?
#: Seed 1: in the 10-episode phase, mostly; after the 40-episode one, barely (365.3 after one step against 349.2).
SIGMA_FLOOR = 0.9
#: how the tables name the floor
FLOOR_LABEL = f"σ ≥ {SIGMA_FLOOR:g}"


def run_dir(name: str) -> Path:
    return RUNS / name


def speed(repeats: int = 3, slots: int = 800) -> dict[str, Any]:
    best: dict[str, float] = {}
    for _ in range(repeats):
        for model in MODELS:  # termination off, so that every slot steps every time on both models
            rate = sampler.bench_stepper("rl_alphamaml/AntDir-v0", slots, 200, default_threads(), 0, model=model,
                                         terminate_when_unhealthy=False)
            best[model] = max(best.get(model, 0.0), rate)
    return {"steps_per_second": best, "ratio": best["maml2017"] / best["v5"], "slots": slots,
            "load_average_1min": os.getloadavg()[0]}


def convention_sets(model: str, scale: float) -> list[str]:
    return [*COMMON, f"env.model={model}", f"policy.action_scale={scale:g}",
            f"train.iterations={CONVENTION_ITERATIONS}"]


def curve(folder: Path) -> dict[str, Any]:
    """Cumulative environment steps, the training return before (and, with adaptation, after one step) and wall
    seconds of a run."""
    rows = read_metrics(folder)
    out = {"steps": np.cumsum([r["time/env_steps"] for r in rows]).tolist(),
           "pre_adapt": [r["returns/pre_adapt"] for r in rows],
           "seconds": float(sum(r["time/iteration"] for r in rows))}
    if all("returns/post_adapt" in r for r in rows):  # not in a run without adaptation (the oracle)
        out["post_adapt"] = [r["returns/post_adapt"] for r in rows]
    return out


def at_steps(c: dict[str, Any], budget: float, key: str = "post_adapt") -> float:
    """Mean of ``key`` over the last WINDOW iterations that end within ``budget`` environment steps."""
    within = [v for s, v in zip(c["steps"], c[key]) if s <= budget]
    return float(np.mean(within[-WINDOW:]))


def convention(models: list[str], previous: dict[str, Any] | None) -> dict[str, Any]:
    runs: dict[str, dict[str, Any]] = dict((previous or {}).get("curves", {}))
    commands: dict[str, str] = dict((previous or {}).get("commands", {}))
    for model in models:
        for scale in SCALES:
            name = f"ant_dir-{model}-scale{scale:g}"
            train_to(run_dir(name), "ant_dir", convention_sets(model, scale), CONVENTION_ITERATIONS)
            runs[f"{model}/{scale:g}"] = curve(run_dir(name))
            commands[f"{model}/{scale:g}"] = train_command("ant_dir", convention_sets(model, scale))
    budget = min(c["steps"][-1] for c in runs.values())
    table = {m: {f"{s:g}": at_steps(runs[f"{m}/{s:g}"], budget) for s in SCALES if f"{m}/{s:g}" in runs}
             for m in MODELS}
    table = {m: row for m, row in table.items() if row}
    winner = {m: max(row, key=row.__getitem__) for m, row in table.items() if len(row) == 2}
    return {"budget_steps": budget, "return_after_one_step": table, "winner": winner, "curves": runs,
            "commands": commands}


def paper_model_sets(scale: str, iterations: int, *extra: str) -> list[str]:
    """MAML-TRPO on the paper's model with the common budget, action scale ``scale`` and the ``extra`` settings
    (which replace a common setting of the same key)."""
    keys = {e.split("=", 1)[0] for e in extra}
    common = [c for c in COMMON if c.split("=", 1)[0] not in keys]
    return [*common, "env.model=maml2017", f"policy.action_scale={scale}", *extra, f"train.iterations={iterations}"]


def budget_iterations(source: Path, at: int, episodes: int, paper: dict[str, Any] = PAPER) -> int:
    """The last iteration that stays within :data:`BUDGET` of the ``paper`` row's steps (AntDir's unless told) when
    the run ``source`` is continued from iteration ``at`` with ``episodes`` per task (counting full-length
    episodes)."""
    spent = sum(r["time/env_steps"] for r in read_metrics(source) if r["iteration"] <= at)
    per_iteration = META_BATCH * episodes * HORIZON * 2  # before and after adaptation
    return at + int((BUDGET * paper["env_steps"] - spent) // per_iteration)


def oracle_sets(scale: str, *extra: str, iterations: int = ORACLE_ITERATIONS) -> list[str]:
    """The oracle on the paper's model: told its task, no adaptation, twice the tasks per iteration (the same steps
    per iteration as MAML-TRPO), with the ``extra`` settings (which replace a setting of the same key)."""
    keys = {e.split("=", 1)[0] for e in extra}
    own = [c for c in ["train.meta_batch=40", "inner.steps=0", "env.model=maml2017", "env.task_in_observation=true",
                       f"policy.action_scale={scale}"] if c.split("=", 1)[0] not in keys]
    common = [c for c in COMMON if c.split("=", 1)[0] not in keys | {"train.meta_batch"}]
    return [*common, *own, *extra, f"train.iterations={iterations}"]


#: ``oracle_trpo_paper``: the paper's oracles as its code trained them (cbfinn/maml_rl
#: ``maml_examples/cluster_trpo_ant.py``: TRPO at max-KL 0.01 on 100 episodes of 200 steps per iteration; the
#: checkpoints its test scripts load, ``oracleenv100traj/itr_1975.pkl`` for AntDir and ``itr_550.pkl`` for AntVel:
#: 39.5 M and 11 M environment steps): 20 tasks × 5 episodes, full curvature, told its task
PAPER_ORACLE_SETS = ("train.meta_batch=20", "sampler.episodes=5", "trpo.max_kl=0.01", "trpo.subsample=1",
                     "train.checkpoint_every=25")
PAPER_ORACLE_ITERATIONS = {"ant_dir": 1975, "ant_vel": 550, "ant_goal": 550}  # AntGoal (no paper oracle): AntVel's
#: each family's oracles (result key, how it was trained); the family's ceiling is the best of those run
ORACLES = {"ant_dir": [("oracle", "max-KL 0.02 for 12 M steps"),
                       ("oracle_trpo_paper", "the paper's recipe, 1975 iterations")],
           "ant_vel": [("ant_vel_oracle", "max-KL 0.02 for 12 M steps"),
                       ("ant_vel_oracle_trpo_paper", "the paper's recipe, 550 iterations")],
           "ant_goal": [("ant_goal_oracle", "the paper's recipe, 550 iterations")]}


def ceiling(result: dict[str, Any], family: str) -> tuple[float, str] | None:
    """The best held-out return of ``family``'s oracles in ``result`` and how that oracle was trained, or None
    when none has run."""
    runs = [(result[key]["adaptation"][0]["mean"], how) for key, how in ORACLES[family] if result.get(key)]
    return max(runs) if runs else None


def no_adaptation(evaluate: list[str]) -> list[str]:
    """The evaluation options ``evaluate`` (the same goals and episodes) for an oracle: no adaptation step."""
    return [*evaluate[:2], "--steps", "0", *evaluate[4:]]


def adaptation(report: dict[str, Any]) -> list[dict[str, float]]:
    return [{"steps": r["steps"], "mean": r["mean"], "ci95": r["ci95"]} for r in report["adaptation"]]


def peak_checkpoint(folder: Path) -> int:
    """The saved checkpoint at which the training return after one step, averaged over the WINDOW iterations up to
    it, was highest (chosen from training numbers only, never from the held-out tasks)."""
    post = {r["iteration"]: r["returns/post_adapt"] for r in read_metrics(folder)}

    def score(iteration: int) -> float:
        return float(np.mean([post[i] for i in range(iteration - WINDOW + 1, iteration + 1) if i in post]))

    return max((it for it, _ in list_checkpoints(folder) if it >= WINDOW), key=score)


def evaluate_at(folder: Path, iteration: int, options: list[str]) -> dict[str, Any]:
    """``rl-alphamaml evaluate RUN --checkpoint …`` of an older checkpoint, kept as ``eval/adaptation_iterN.json``
    (reused when there)."""
    return evaluate_kept(folder, f"adaptation_iter{iteration:06d}", "--checkpoint",
                         str(checkpoint_path(folder, iteration)), *options)


def trained(name: str, sets: list[str], iterations: int, evaluate: list[str], peak: bool = False,
            config: str = "ant_dir") -> dict[str, Any]:
    folder = run_dir(name)
    train_to(folder, config, sets, iterations)
    return report(folder, train_command(config, sets), evaluate, peak)


def report(folder: Path, how: str, evaluate: list[str], peak: bool = False) -> dict[str, Any]:
    """A trained run's curve and its held-out adaptation (``rl-alphamaml evaluate RUN EVALUATE``) at the newest
    checkpoint, and with ``peak`` also at :func:`peak_checkpoint`."""
    out: dict[str, Any] = {"command": how, "evaluate": "rl-alphamaml evaluate RUN " + " ".join(evaluate),
                           "curve": curve(folder)}
    if peak:
        best = peak_checkpoint(folder)
        out["peak"] = {"iteration": best, "adaptation": adaptation(evaluate_at(folder, best, evaluate))}
    newest = evaluate_once(folder, *evaluate)  # the newest checkpoint, last: its report stays in eval/
    out.update(adaptation=adaptation(newest), alpha=newest.get("alpha"), iteration=last_iteration(folder))
    return out


def alpha_sensitivity(source: Path, iteration: int) -> dict[str, Any]:
    """One adaptation step from checkpoint ``iteration`` of ``source`` with each rate of :data:`TEST_ALPHAS` (the
    AntDir protocol), each in a folder of its own holding the run's config and that checkpoint (so that the run's
    own reports stay as they are)."""
    options = [*EVALUATE[:2], "--steps", "1", *EVALUATE[4:]]
    out: dict[str, Any] = {"iteration": iteration, "rows": {}}
    for alpha in TEST_ALPHAS:
        probe = RunDir(source.with_name(f"{source.name}-iter{iteration}-alpha{alpha:g}"))
        if not probe.config.is_file():
            probe.checkpoints.mkdir(parents=True, exist_ok=True)
            shutil.copy2(checkpoint_path(source, iteration), probe.checkpoints)
            shutil.copy2(RunDir(source).config, probe.config)
        out["rows"][f"{alpha:g}"] = adaptation(evaluate_once(probe.path, *options, "--inner-lr", f"{alpha:g}"))
    out["command"] = (f"rl-alphamaml evaluate RUN --checkpoint RUN/checkpoints/iter_{iteration:06d}.pt "
                      + " ".join(options) + " --inner-lr ALPHA")
    return out


def branch(source: Path, iteration: int, folder: Path) -> None:
    """Make ``folder`` the run ``source`` as it stood at its checkpoint ``iteration`` — the checkpoints up to it,
    ``config.yaml``, ``changes.log`` and the metrics up to it (not the TensorBoard events, which hold the
    source's later iterations too) — so that it is resumed from there with another batch per task, the
    iterations both share computed once. Nothing is done when ``folder`` exists."""
    if folder.exists():
        return
    src, partial = RunDir(source), RunDir(folder.with_name(folder.name + ".partial"))
    shutil.rmtree(partial.path, ignore_errors=True)
    partial.checkpoints.mkdir(parents=True)
    for it, path in list_checkpoints(source):
        if it <= iteration:
            shutil.copy2(path, partial.checkpoints / path.name)
    for name in ("config", "changes"):  # a run never resumed with a change has no changes.log
        if getattr(src, name).exists():
            shutil.copy2(getattr(src, name), getattr(partial, name))
    rows = [r for r in read_metrics(source) if r["iteration"] <= iteration]
    partial.metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    partial.path.rename(folder)


def continued_dir(source: str, at: int, changes: list[str]) -> Path:
    """The folder of the run ``source`` continued from its checkpoint ``at`` with the resume ``changes``."""
    return run_dir(f"{source}-from{at}-" + "-".join(c.replace("=", "") for c in changes))


def continued(source: str, at: int, changes: list[str], iterations: int, evaluate: list[str]) -> dict[str, Any]:
    """The run ``source`` continued from its checkpoint ``at`` with the resume ``changes`` (``--set`` values) to
    ``iterations`` (:func:`branch`, then ``rl-alphamaml train --resume``), evaluated at its newest checkpoint."""
    folder = continued_dir(source, at, changes)
    branch(run_dir(source), at, folder)
    sets = [x for s in [*changes, f"train.iterations={iterations}"] for x in ("--set", s)]
    if last_iteration(folder) < iterations:
        cli("train", "--resume", str(folder), *sets)
    how = "rl-alphamaml train --resume RUN " + " ".join(sets)
    own = sum(r["time/iteration"] for r in read_metrics(folder) if r["iteration"] > at)
    return {**report(folder, how, evaluate), "from": at, "source": source, "changes": changes, "own_seconds": own}


def trust_region(config: str, scale: str, iterations: int, variant: str = "trpo_paper", seed: int = 0,
                 min_std: float | None = None) -> tuple[str, list[str]]:
    """The run folder's name and the settings of the ``config`` family's run with the paper's trust region (the
    ``variant``'s settings: ``trpo_paper``, or ``trpo_radius_hd`` for its radius by hypergradient) to
    ``iterations``, from ``seed`` (named in the folder when not 0), with σ floored at ``min_std`` when given."""
    tag, _, extra = VARIANTS[variant]
    name, sets = f"{config}-maml2017-{tag}-scale{scale}", paper_model_sets(scale, iterations, *extra)
    if min_std is not None:
        name, sets = f"{name}-minstd{min_std:g}", [*sets, f"policy.min_std={min_std:g}"]
    return (name, sets) if seed == 0 else (f"{name}-seed{seed}", [*sets, f"seed={seed}"])


def paper_oracle(config: str, scale: str, evaluate: list[str]) -> dict[str, Any]:
    """The ``config`` family's oracle trained with the paper's recipe (:data:`PAPER_ORACLE_SETS`, to
    :data:`PAPER_ORACLE_ITERATIONS`), evaluated with ``evaluate`` without adaptation."""
    iterations = PAPER_ORACLE_ITERATIONS[config]
    return trained(f"{config}-maml2017-oracle-paper-scale{scale}",
                   oracle_sets(scale, *PAPER_ORACLE_SETS, iterations=iterations), iterations, no_adaptation(evaluate),
                   config=config)


def trust_region_continued(config: str, scale: str, iterations: int, at: int, episodes: int, paper: dict[str, Any],
                           evaluate: list[str], variant: str = "trpo_paper", changes: tuple[str, ...] = (),
                           seed: int = 0, min_std: float | None = None) -> dict[str, Any]:
    """The ``config`` family's run with the paper's trust region (:func:`trust_region`, trained or reused to
    ``iterations`` from ``seed``, σ floored at ``min_std``) continued from its checkpoint ``at`` with ``episodes`` per
    task, to :data:`BUDGET` of the ``paper`` row's steps (:func:`continued`)."""
    source, sets = trust_region(config, scale, iterations, variant, seed, min_std)
    train_to(run_dir(source), config, sets, iterations)
    return continued(source, at, [f"sampler.episodes={episodes}", *changes],
                     budget_iterations(run_dir(source), at, episodes, paper), evaluate)


def ant_dir_recipe(scale: str, seed: int, min_std: float | None = None) -> dict[str, Any]:
    """AntDir's recipe of :data:`SEED_RECIPES` trained from ``seed`` (σ floored at ``min_std`` when given), evaluated
    on seed 0's held-out goals (``evaluate --seed``) so that runs from different seeds face the same goals."""
    variant, _, changes = CONTINUED[SEED_RECIPES["ant_dir"]]
    return trust_region_continued("ant_dir", scale, PEAK_ITERATIONS, PEAK_ITERATIONS, BATCH_EPISODES, PAPER,
                                  [*EVALUATE, "--seed", str(evaluation_seed(0))], variant, changes, seed, min_std)


def ppo_oracle(previous: dict[str, Any] | None, save: Callable[[dict[str, Any]], None],
               steps: int = PPO_ORACLE_STEPS) -> dict[str, Any]:
    """PPO from scratch on each AntDir direction of the paper's model (``configs/ant_dir.yaml`` with
    ``env.model=maml2017``; PPO's own actions over the whole action space): mean return of
    :data:`PPO_ORACLE_EPISODES` episodes per direction. A PPO run cannot be resumed, so each direction is handed to
    ``save`` as soon as it ends, and one already in ``previous`` with the same budget is kept."""
    config, _ = load_experiment_config(ROOT / "configs" / "ant_dir.yaml", ["env.model=maml2017"])
    env_id, env_kwargs = config.env.id, config.env.kwargs()
    out = previous if previous and previous.get("steps") == steps else {"steps": steps, "tasks": {}}
    out.update(episodes=PPO_ORACLE_EPISODES, env=env_id, env_kwargs=env_kwargs,
               command="python benchmarks/ant_paper.py --stages ppo_oracle")
    for direction in (1, -1):
        if str(direction) in out["tasks"]:
            continue
        started = time.perf_counter()
        mean, _ = ppo_returns(env_id, DirectionTask(direction), steps, PPO_ORACLE_EPISODES, seed=0,
                              env_kwargs=env_kwargs)
        out["tasks"][str(direction)] = {"mean": mean, "seconds": time.perf_counter() - started}
        save(out)
    out["mean"] = float(np.mean([t["mean"] for t in out["tasks"].values()]))
    return out


def ci_cells(rows: list[dict[str, float]]) -> str:
    """``mean ± ci95`` of each row, as Markdown table cells."""
    return " | ".join(f"{r['mean']:.1f} ± {r['ci95']:.1f}" for r in rows)


def episodes(stage: dict[str, Any]) -> int:
    """The episodes per adaptation step of a stage's held-out evaluation (its ``evaluate`` command's)."""
    words = stage["evaluate"].split()
    return int(words[words.index("--episodes") + 1])


def training_total(result: dict[str, Any]) -> tuple[int, float]:
    """How many training runs ``result`` holds and their training seconds summed: a continued run's own seconds
    only, ``oracle`` not again (it is one of ``oracles``), PPO's directions as runs of their own."""
    curves = [*result.get("convention", {}).get("curves", {}).values(),
              *(o["curve"] for o in result.get("oracles", {}).values())]
    seconds = [c["seconds"] for c in curves]
    seconds += [stage.get("own_seconds", stage["curve"]["seconds"]) for key, stage in result.items()
                if key != "oracle" and isinstance(stage, dict) and "curve" in stage]
    seconds += [t["seconds"] for t in (result.get("ppo_oracle") or {}).get("tasks", {}).values()]
    for stage in [*(stage for runs in result.get("seeds", {}).values() for stage in runs.values()),
                  *result.get("sigma_floor", {}).values()]:
        # a seeded AntDir recipe is two runs: the run it continues, then its continuation
        seconds += [stage["curve"]["seconds"] - stage["own_seconds"], stage["own_seconds"]] if "own_seconds" in stage \
            else [stage["curve"]["seconds"]]
    return len(seconds), float(sum(seconds))


def continued_title(stage: str, at: int = PEAK_ITERATIONS) -> str:
    """How the tables name the :data:`CONTINUED` stage ``stage``, continued from iteration ``at``."""
    return f"AntDir with {CONTINUED[stage][1]}, continued from iteration {at} with {BATCH_EPISODES} episodes per task"


def recipe_title(family: str) -> str:
    """How the tables name ``family``'s recipe of :data:`SEED_RECIPES`: its seed-0 stage's section title."""
    if family == "ant_dir":
        return continued_title(SEED_RECIPES[family])
    return f"AntVel with {VARIANTS['trpo_radius_hd'][1]}"


def seeds_summary(result: dict[str, Any]) -> list[str]:
    """The ``seeds`` stage's table: each recipe of :data:`SEED_RECIPES` from every seed run, the mean over the seeds of
    each run's mean, and the paper's row."""
    lines = ["## The AntDir and AntVel recipes from more seeds", ""]
    if not result.get("seeds"):
        return [*lines, "Not run yet.", ""]
    lines += [f"Each run's held-out return on seed 0's 40 goals (`evaluate --seed {evaluation_seed(0)}`), ± 95 % CI "
              "over the goals; the mean of the seeds is ± the standard deviation of their means.", "",
              "| recipe | seed | before adaptation | after 1 step | after 2 steps | after 3 steps |",
              "|---|---|---|---|---|---|"]
    for family, paper in (("ant_dir", PAPER), ("ant_vel", PAPER_VEL)):
        runs = {"0": result.get(SEED_RECIPES[family]), **result["seeds"].get(family, {})}
        runs = {seed: stage for seed, stage in runs.items() if stage}
        name = f"{'AntDir' if family == 'ant_dir' else 'AntVel'} (`{SEED_RECIPES[family]}`)"
        lines += [f"| {name} | {seed} | {ci_cells(stage['adaptation'])} |" for seed, stage in runs.items()]
        if len(runs) > 1:
            means = np.array([[r["mean"] for r in stage["adaptation"]] for stage in runs.values()])
            lines.append(f"| {name} | mean of {len(runs)} | "
                         + " | ".join(f"{m:.1f} ± {sd:.1f} (SD)" for m, sd in zip(means.mean(0), means.std(0, ddof=1)))
                         + " |")
        if family == "ant_dir":
            lines += [f"| {name} with {FLOOR_LABEL} (`policy.min_std={SIGMA_FLOOR:g}`) | {seed} | "
                      f"{ci_cells(stage['adaptation'])} |" for seed, stage in result.get("sigma_floor", {}).items()]
        lines.append(f"| the paper | | {' | '.join(f'{v:g}' for v in paper['maml'])} |")
    seeds = " ".join(map(str, sorted({int(seed) for runs in result["seeds"].values() for seed in runs})))
    commands = [f"`python benchmarks/ant_paper.py --stages seeds --seeds {seeds}`"]
    if result.get("sigma_floor"):
        floored = " ".join(sorted(result["sigma_floor"], key=int))
        commands.append(f"`python benchmarks/ant_paper.py --stages sigma_floor --seeds {floored}`")
    return [*lines, "", f"Command{'s' * (len(commands) > 1)}: {', '.join(commands)}.", ""]


def seed_split(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What separates the AntDir recipe's seeds, from their run folders: per seed, the training return after one step
    and the policy's σ (``policy/std``) in each window of :data:`SPLIT_WINDOWS`, the trust region's radius
    (``trpo/max_kl``) over the 10-episode phase, and the held-out return before and after one step per direction.
    The run folders are not kept in git: a seed whose folders are gone keeps the row ``result`` already has."""
    previous = result.get("seed_split", {})
    runs = {"0": result.get(SEED_RECIPES["ant_dir"]), **result.get("seeds", {}).get("ant_dir", {}),
            **{f"{seed}, {FLOOR_LABEL}": stage for seed, stage in result.get("sigma_floor", {}).items()}}
    out: dict[str, dict[str, Any]] = {}
    for seed, stage in runs.items():
        if not stage:
            continue
        held_out_file = continued_dir(stage["source"], stage["from"], stage["changes"]) / "eval" / "adaptation.json"
        rows = [r for r in read_metrics(run_dir(stage["source"])) if r["iteration"] <= stage["from"]]
        if not (rows and held_out_file.is_file()):
            if seed in previous:
                out[seed] = previous[seed]
            continue
        window = {f"{a}-{b}": [r for r in rows if a <= r["iteration"] <= b] for a, b in SPLIT_WINDOWS}
        held_out = json.loads(held_out_file.read_text())
        directions = [task["direction"] for task in held_out["tasks"]]
        out[seed] = {
            "post_adapt": {w: float(np.mean([r["returns/post_adapt"] for r in rs])) for w, rs in window.items()},
            "std": {w: float(np.mean([r["policy/std"] for r in rs])) for w, rs in window.items()},
            "max_kl": float(np.mean([r["trpo/max_kl"] for r in rows])),
            "held_out": {name: [float(np.mean([v for v, d in zip(step, directions) if d == sign]))
                                for step in held_out["per_task"][:2]]
                         for name, sign in (("forward", 1), ("backward", -1))}}
    return out


def split_lines(split: dict[str, dict[str, Any]]) -> list[str]:
    """The table of :func:`seed_split`."""
    if len(split) < 2:
        return []
    windows = [f"{a}-{b}" for a, b in SPLIT_WINDOWS]
    lines = ["## What separates the AntDir seeds", "",
             "The AntDir recipe's seeds side by side: the training return after one step and the policy's σ "
             f"(`policy/std`), each the mean over iterations {' and '.join(windows)} of the run before it is "
             f"continued with {BATCH_EPISODES} episodes; the radius of its trust region (`trpo/max_kl`), the mean over "
             "that run; and the held-out return of the continued run (seed 0's 40 goals, 40 episodes) before and "
             "after one step, forward and backward goals apart.", "",
             "| seed | " + " | ".join(f"training return, iterations {w}" for w in windows) + " | "
             + " | ".join(f"σ, iterations {w}" for w in windows)
             + " | radius | held-out forward, before → after | held-out backward, before → after |",
             "|---" * (2 * len(windows) + 4) + "|"]
    for seed, row in split.items():
        lines.append(f"| {seed} | " + " | ".join(f"{row['post_adapt'][w]:.1f}" for w in windows) + " | "
                     + " | ".join(f"{row['std'][w]:.2f}" for w in windows) + f" | {row['max_kl']:.3f} | "
                     + " | ".join(f"{row['held_out'][d][0]:.1f} → {row['held_out'][d][1]:.1f}"
                                  for d in ("forward", "backward")) + " |")
    return [*lines, ""]


def markdown(result: dict[str, Any]) -> str:
    runs, seconds = training_total(result)
    lines = ["# Ant as the MAML paper ran it", "",
             f"Made by `python benchmarks/ant_paper.py` on {result['machine']}; runs in "
             "`benchmarks/results/ant_paper_runs/`. Returns are summed over an episode of at most 200 steps. "
             f"{runs} training runs, {seconds / 60:.0f} min of training in all (a continued run counted from where it "
             "leaves the run it continues).", ""]
    sp = result.get("speed")
    if sp:
        rates = sp["steps_per_second"]
        lines += ["## Simulator speed", "",
                  f"`envs.BatchedEnv`, {sp['slots']} slots, random actions, termination off, best of 3: the paper's "
                  f"model {rates['maml2017']:,.0f} environment steps/s, gymnasium's Ant-v5 {rates['v5']:,.0f} "
                  f"({sp['ratio']:.1f}×; load average {sp['load_average_1min']:.2f} at the end).", ""]
    conv = result.get("convention")
    if conv:
        lines += ["## Action convention (AntDir, MAML-TRPO, 20 tasks × 10 episodes per iteration)", "",
                  f"Training return after one adaptation step, mean of the last {WINDOW} iterations within "
                  f"{conv['budget_steps'] / 1e6:.2f} M environment steps (the smallest any run reached):", "",
                  "| simulator model | clip(a), σ = 1 over the full torque range (paper) | clip(0.1 · a) (references) "
                  "| wall time (both runs) |", "|---|---|---|---|"]
        for model, row in conv["return_after_one_step"].items():
            cells = [f"{row[f'{s:g}']:.1f}" if f"{s:g}" in row else "not run" for s in SCALES]
            seconds = sum(conv["curves"][f"{model}/{s}"]["seconds"] for s in row)
            lines.append(f"| `{model}` | {cells[0]} | {cells[1]} | {seconds / 60:.1f} min |")
        lines += ["", "Commands: " + "; ".join(f"`{c}`" for c in conv["commands"].values()), ""]
    stages = [("AntDir on the paper's model (MAML-TRPO)", result.get("ant_dir"))]
    if "ant_dir_batch" in result:
        b = result["ant_dir_batch"]
        stages.append((f"AntDir continued from iteration {b['from']} with {BATCH_EPISODES} episodes per task", b))
    stages += [(f"AntDir with {title}", result.get(stage)) for stage, (_, title, _) in VARIANTS.items()]
    stages += [(continued_title(stage, b["from"]), b) for stage in CONTINUED if (b := result.get(stage))]
    stages += [(f"The oracle on the paper's model, action scale {s} (told its task, no adaptation)", o)
               for s, o in result.get("oracles", {}).items()] or [("The oracle", None)]
    stages.append(("AntVel on the paper's model (MAML-TRPO)", result.get("ant_vel")))
    stages.append((f"AntVel with {VARIANTS['trpo_paper'][1]}", result.get("ant_vel_trpo_paper")))
    if "ant_vel_trpo_paper_batch" in result:
        b = result["ant_vel_trpo_paper_batch"]
        stages.append((f"AntVel with the paper's trust region, continued from iteration {b['from']} with "
                       f"{VEL_BATCH_EPISODES} episodes per task", b))
    stages.append((recipe_title("ant_vel"), result.get(SEED_RECIPES["ant_vel"])))
    stages.append((f"AntGoal on the paper's model with {VARIANTS['trpo_paper'][1]} (not in the paper)",
                   result.get("ant_goal_trpo_paper")))
    stages.append(("The AntVel oracle on the paper's model (told its task, no adaptation)",
                   result.get("ant_vel_oracle")))
    stages += [(f"The {family} oracle as the paper's code trained {whose} (TRPO, max-KL 0.01, 100 episodes per "
                f"iteration, told its task)", result.get(key))
               for family, key, whose in (("AntDir", "oracle_trpo_paper", "its own"),
                                          ("AntVel", "ant_vel_oracle_trpo_paper", "its own"),
                                          ("AntGoal", "ant_goal_oracle", "its AntVel oracle"))]
    stages += [(f"{recipe_title(family)}, seed {seed} (on seed 0's held-out goals)", stage)
               for family, runs in result.get("seeds", {}).items() for seed, stage in runs.items()]
    stages += [(f"{recipe_title('ant_dir')}, {FLOOR_LABEL}, seed {seed} (on seed 0's held-out goals)", stage)
               for seed, stage in result.get("sigma_floor", {}).items()]
    for title, stage in stages:
        if not stage:
            lines += [f"## {title}", "", "Not run yet.", ""]
            continue
        c = stage["curve"]
        header = [f"after {r['steps']} step{'s' * (r['steps'] != 1)}" for r in stage["adaptation"]]
        table = [f"| checkpoint | {' | '.join(header)} |", "|---" * (len(header) + 1) + "|",
                 f"| newest (iteration {stage.get('iteration', len(c['steps']))}) | {ci_cells(stage['adaptation'])} |"]
        if "peak" in stage:
            p = stage["peak"]
            table.append(f"| the peak of the training return after one step (iteration {p['iteration']}) | "
                         f"{ci_cells(p['adaptation'])} |")
        lines += [f"## {title}", "",
                  f"{len(c['steps'])} iterations, {c['steps'][-1] / 1e6:.1f} M environment steps, "
                  f"{c['seconds'] / 60:.1f} min here"
                  + (f" ({stage['own_seconds'] / 60:.1f} of them after the copied {stage['from']} iterations)"
                     if "own_seconds" in stage else "")
                  + (f"; α {stage['alpha']:.3g} at the newest checkpoint" if len(stage["adaptation"]) > 1 else "")
                  + f". 40 held-out goals, {episodes(stage)} episodes per adaptation step, "
                  "± 95 % CI:", "", *table, "",
                  (f"RUN starts as a copy of the run `{stage['source']}` at its checkpoint {stage['from']} (its "
                   "checkpoints, config and metrics up to there: `branch` in ant_paper.py). "
                   if "from" in stage else "")
                  + f"Commands: `{stage['command']}`, then `{stage['evaluate']}`"
                  + (" (with `--checkpoint` for the peak)" if "peak" in stage else "") + ".", ""]
        if stage is result.get("ant_dir") and "alpha" in result and "peak" in stage:
            probe, trained_alpha = result["alpha"], f"{stage['alpha']:g}"
            rows = {**probe["rows"], trained_alpha: stage["peak"]["adaptation"][:2]}
            cells = ", ".join(f"α {a}{' (trained)' * (a == trained_alpha)}: {rows[a][1]['mean']:.1f} ± "
                              f"{rows[a][1]['ci95']:.1f}" for a in sorted(rows, key=float))
            lines += [f"Adapted with other inner rates at the peak checkpoint (iteration {probe['iteration']}), after "
                      f"one step: {cells}. Command: `{probe['command']}`.", ""]
    lines += seeds_summary(result)
    lines += split_lines(result.get("seed_split", {}))
    ppo = result.get("ppo_oracle")
    lines += ["## PPO on each AntDir direction of the paper's model (the ceiling by another learner)", ""]
    if ppo and ppo["tasks"]:
        cells = ", ".join(f"{'forward' if d == '1' else 'backward'} {t['mean']:.1f} ({t['seconds'] / 60:.0f} min)"
                          for d, t in ppo["tasks"].items())
        lines += [f"stable-baselines3's PPO with its defaults, {ppo['steps'] / 1e6:g} M environment steps per "
                  f"direction, mean return of {ppo['episodes']} episodes: {cells}"
                  + (f"; mean {ppo['mean']:.1f}" if "mean" in ppo else " (the other direction not run yet)")
                  + f". Command: `{ppo['command']}`.", ""]
    else:
        lines += ["Not run yet.", ""]
    lines += ["## The paper", "",
              f"MAML paper (Finn et al. 2017, Fig. 5), AntDir after 0 / 1 / 2 / 3 steps: "
              f"{' / '.join(f'{v:g}' for v in PAPER['maml'])}; oracle {PAPER['oracle']:g}. 40 tasks × 40 episodes "
              f"per iteration, 575 iterations: {PAPER['env_steps'] / 1e6:.0f} M environment steps. AntVel: "
              f"{' / '.join(f'{v:g}' for v in PAPER_VEL['maml'])}; oracle {PAPER_VEL['oracle']:g}; "
              f"{PAPER_VEL['settings']}, {PAPER_VEL['env_steps'] / 1e6:.0f} M steps.", "",
              "The paper's AntDir row as its code's history has it (cbfinn/maml_rl, "
              "`icml/icml_antdirec_results_maml.pkl`): the model of the ICML submission (commit 7fe27d7), 20 tasks × "
              f"40 episodes at iteration 350 ({PAPER_SUBMISSION['env_steps'] / 1e6:.0f} M steps), gave "
              f"{' / '.join(f'{v:.1f}' for v in PAPER_SUBMISSION['maml'])} after 0-3 steps; the published "
              f"{PAPER['maml'][1]:g} is the 40-task model at iteration 575 (commit 4d41869; the checkpoint "
              "`examples/test_maml_ant_direc.py` loads from 1a55e36). Its oracle is TRPO on 100 episodes per "
              "iteration at iteration 1975 (`maml_examples/cluster_trpo_ant.py`: 39.5 M steps).", ""]
    vel_ceiling = ceiling(result, "ant_vel")
    if result.get("ant_vel") and vel_ceiling:
        top, how = vel_ceiling
        ours, paper = result["ant_vel"]["adaptation"][1]["mean"], PAPER_VEL["maml"][1]
        text = (f"AntVel: one adaptation step reaches {100 * ours / top:.0f} % of this simulator's oracle "
                f"({ours:.1f} / {top:.1f}; the best oracle, trained with {how})")
        for key, how_trained in (("ant_vel_trpo_paper", "with the paper's trust region"),
                                 ("ant_vel_trpo_paper_batch",
                                  f"with it continued with {VEL_BATCH_EPISODES} episodes per task"),
                                 ("ant_vel_trpo_radius_hd", "with its radius by hypergradient")):
            if result.get(key):
                mean = result[key]["adaptation"][1]["mean"]
                text += f", {100 * mean / top:.0f} % {how_trained} ({mean:.1f} / {top:.1f})"
        lines += [f"{text}; the paper's reaches {100 * paper / PAPER_VEL['oracle']:.0f} % "
                  f"({paper:g} / {PAPER_VEL['oracle']:g}).", ""]
    goal_ceiling = ceiling(result, "ant_goal")
    if result.get("ant_goal_trpo_paper") and goal_ceiling:
        top, how = goal_ceiling
        ours = result["ant_goal_trpo_paper"]["adaptation"][1]["mean"]
        lines += [f"AntGoal: one adaptation step reaches {100 * ours / top:.0f} % of this simulator's oracle "
                  f"({ours:.1f} / {top:.1f}; the oracle trained with {how}); the paper has no AntGoal.", ""]
    dir_ceiling = ceiling(result, "ant_dir")
    if result.get("ant_dir") and dir_ceiling:
        top, how = dir_ceiling
        ours = result["ant_dir"]["adaptation"][1]["mean"]
        text = (f"AntDir: one adaptation step reaches {100 * ours / top:.0f} % of this simulator's oracle "
                f"({ours:.1f} / {top:.1f}; the best oracle, trained with {how})")
        if "peak" in result["ant_dir"]:
            peak = result["ant_dir"]["peak"]["adaptation"][1]["mean"]
            text += f", {100 * peak / top:.0f} % at the peak checkpoint ({peak:.1f} / {top:.1f})"
        if "ant_dir_batch" in result:
            batch = result["ant_dir_batch"]["adaptation"][1]["mean"]
            text += (f", {100 * batch / top:.0f} % continued with {BATCH_EPISODES} episodes per task "
                     f"({batch:.1f} / {top:.1f})")
        for stage, (_, name, _) in CONTINUED.items():
            if stage in result:
                best = result[stage]["adaptation"][1]["mean"]
                text += (f", {100 * best / top:.0f} % with {name}, continued with {BATCH_EPISODES} episodes per task "
                         f"({best:.1f} / {top:.1f})")
        lines += [f"{text}; the paper's reaches {100 * PAPER['maml'][1] / PAPER['oracle']:.0f} % "
                  f"({PAPER['maml'][1]:g} / {PAPER['oracle']:g}).", ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, grid = plt.subplots(2, 2, figsize=(22, 12))  # each panel's legend to its right: the labels are long
    axes = grid.ravel()
    for ax in axes:  # more curves than the default cycle has colours
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2])
    conv = result.get("convention", {})
    for name, c in conv.get("curves", {}).items():
        model, scale = name.split("/")
        axes[0].plot(np.array(c["steps"]) / 1e6, c["post_adapt"], label=f"{model}, action scale {scale}")
    axes[0].set(title="AntDir: action convention", xlabel="environment steps (M)",
                ylabel="training return after one step")
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    batch = result.get("ant_dir_batch")
    panels = [(axes[1], "AntDir", PAPER, [("MAML-TRPO, after one step", result.get("ant_dir"), "post_adapt")]
               + [(f"continued with {BATCH_EPISODES} episodes per task", batch, "post_adapt")] * bool(batch)
               + [(f"{stage} (--stages), after one step", result.get(stage), "post_adapt") for stage in VARIANTS]
               + [(f"{name}, continued with {BATCH_EPISODES} episodes per task", result.get(stage),
                   "post_adapt") for stage, (_, name, _) in CONTINUED.items()]
               + [(f"{CONTINUED[SEED_RECIPES['ant_dir']][1]}, seed {seed} (whole run)", {**stage, "from": 0},
                   "post_adapt") for seed, stage in result.get("seeds", {}).get("ant_dir", {}).items()]
               + [(f"the same with {FLOOR_LABEL}, seed {seed} (whole run)", {**stage, "from": 0}, "post_adapt")
                  for seed, stage in result.get("sigma_floor", {}).items()]
               + [(f"oracle, action scale {s}", o, "pre_adapt") for s, o in result.get("oracles", {}).items()]
               + [("oracle, the paper's recipe", result.get("oracle_trpo_paper"), "pre_adapt")]),
              (axes[2], "AntVel", PAPER_VEL, [("MAML-TRPO, after one step", result.get("ant_vel"), "post_adapt"),
                                              ("the paper's trust region, after one step",
                                               result.get("ant_vel_trpo_paper"), "post_adapt"),
                                              (f"the paper's trust region, continued with {VEL_BATCH_EPISODES} "
                                               "episodes per task", result.get("ant_vel_trpo_paper_batch"),
                                               "post_adapt"),
                                              ("its radius by hypergradient, after one step",
                                               result.get("ant_vel_trpo_radius_hd"), "post_adapt"),
                                              *((f"its radius by hypergradient, seed {seed}", stage, "post_adapt")
                                                for seed, stage in result.get("seeds", {}).get("ant_vel", {}).items()),
                                              ("oracle", result.get("ant_vel_oracle"), "pre_adapt"),
                                              ("oracle, the paper's recipe",
                                               result.get("ant_vel_oracle_trpo_paper"), "pre_adapt")]),
              (axes[3], "AntGoal", None, [("the paper's trust region, after one step",
                                           result.get("ant_goal_trpo_paper"), "post_adapt"),
                                          ("the paper's trust region, before adaptation",
                                           result.get("ant_goal_trpo_paper"), "pre_adapt"),
                                          ("oracle, the paper's recipe", result.get("ant_goal_oracle"), "pre_adapt")])]
    for ax, family, paper, runs in panels:
        for label, stage, key in runs:
            if stage:  # a continued run from where it leaves the run it continues
                start = stage.get("from", 0)
                ax.plot(np.array(stage["curve"]["steps"][start:]) / 1e6, stage["curve"][key][start:], label=label)
        if paper:  # the paper has no AntGoal
            ax.axhline(paper["maml"][1], color="grey", linestyle="--", label="paper, after one step")
            ax.axhline(paper["oracle"], color="grey", linestyle=":", label="paper's oracle")
        ax.set(title=f"{family} on the paper's model (training returns)", xlabel="environment steps (M)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.set_dpi(110)
    results_io.save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="*", default=list(STAGES), choices=STAGES)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS,
                        help="the simulator models of the convention stage (default both)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[1],
                        help="the seeds of the seeds stage, above 0 (default 1)")
    args = parser.parse_args()
    if "seeds" in args.stages and (not args.seeds or min(args.seeds) < 1):  # before any stage trains for an hour
        parser.error("--seeds takes one or more seeds above 0 (seed 0's runs are the recipes' own stages)")
    if "sigma_floor" in args.stages and (not args.seeds or min(args.seeds) < 0):
        parser.error("--seeds takes one or more seeds of 0 or above")
    out = RESULTS / "ant_paper"

    def save_json(data: dict[str, Any]) -> None:
        results_io.write_text(out.with_suffix(".json"), json.dumps(data, indent=2) + "\n")

    result: dict[str, Any] = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() \
        else {}
    result["machine"] = f"this project's {platform.machine()} VM, {len(os.sched_getaffinity(0))} CPUs"
    if "speed" in args.stages:
        result["speed"] = speed()
    if "convention" in args.stages:
        result["convention"] = convention(args.models, result.get("convention"))
    scale = result.get("convention", {}).get("winner", {}).get("maml2017")
    if set(args.stages) - {"speed", "convention"} and scale is None:
        parser.error("every training stage after convention uses the convention that won on the paper's model: "
                     "run --stages convention --models maml2017 first")
    source = f"ant_dir-maml2017-maml-scale{scale}"  # the MAML-TRPO AntDir run
    if "ant_dir" in args.stages:
        result["ant_dir"] = trained(source, paper_model_sets(scale, ANT_DIR_ITERATIONS), ANT_DIR_ITERATIONS,
                                    EVALUATE, peak=True)
    if "oracle" in args.stages:
        oracle_evaluation = no_adaptation(EVALUATE)
        result["oracles"] = {f"{s:g}": trained(f"ant_dir-maml2017-oracle-scale{s:g}", oracle_sets(f"{s:g}"),
                                               ORACLE_ITERATIONS, oracle_evaluation) for s in SCALES}
        # the simulator's ceiling: the better of the two conventions
        result["oracle"] = max(result["oracles"].values(), key=lambda o: o["adaptation"][0]["mean"])
    if "ant_dir_batch" in args.stages or "alpha" in args.stages:  # both start from the AntDir run's peak
        train_to(run_dir(source), "ant_dir", paper_model_sets(scale, ANT_DIR_ITERATIONS), ANT_DIR_ITERATIONS)
        at = peak_checkpoint(run_dir(source))
    if "ant_dir_batch" in args.stages:
        result["ant_dir_batch"] = continued(source, at, [f"sampler.episodes={BATCH_EPISODES}"],
                                            budget_iterations(run_dir(source), at, BATCH_EPISODES), EVALUATE)
    if "alpha" in args.stages:
        result["alpha"] = alpha_sensitivity(run_dir(source), at)
    for stage, (tag, _, extra) in VARIANTS.items():
        if stage in args.stages:
            sets = paper_model_sets(scale, PEAK_ITERATIONS, *extra)
            result[stage] = trained(f"ant_dir-maml2017-{tag}-scale{scale}", sets, PEAK_ITERATIONS, EVALUATE)
    for stage, (variant, _, changes) in CONTINUED.items():
        if stage in args.stages:
            result[stage] = trust_region_continued("ant_dir", scale, PEAK_ITERATIONS, PEAK_ITERATIONS, BATCH_EPISODES,
                                                   PAPER, EVALUATE, variant, changes)
    if "ant_vel" in args.stages:
        result["ant_vel"] = trained(f"ant_vel-maml2017-maml-scale{scale}", paper_model_sets(scale, ANT_VEL_ITERATIONS),
                                    ANT_VEL_ITERATIONS, EVALUATE_VEL, peak=True, config="ant_vel")
        result["ant_vel_oracle"] = trained(f"ant_vel-maml2017-oracle-scale{scale}", oracle_sets(scale),
                                           ORACLE_ITERATIONS, no_adaptation(EVALUATE_VEL), config="ant_vel")
    if "ant_vel_trpo_paper" in args.stages:
        result["ant_vel_trpo_paper"] = trained(*trust_region("ant_vel", scale, ANT_VEL_ITERATIONS), ANT_VEL_ITERATIONS,
                                               EVALUATE_VEL, peak=True, config="ant_vel")
    if "ant_vel_trpo_paper_batch" in args.stages:
        result["ant_vel_trpo_paper_batch"] = trust_region_continued("ant_vel", scale, ANT_VEL_ITERATIONS,
                                                                    VEL_BATCH_FROM, VEL_BATCH_EPISODES, PAPER_VEL,
                                                                    EVALUATE_VEL)
    if "ant_vel_trpo_radius_hd" in args.stages:
        radius = trust_region("ant_vel", scale, ANT_VEL_ITERATIONS, "trpo_radius_hd")
        result["ant_vel_trpo_radius_hd"] = trained(*radius, ANT_VEL_ITERATIONS, EVALUATE_VEL, peak=True,
                                                   config="ant_vel")
    if "seeds" in args.stages:
        same_goals = ["--seed", str(evaluation_seed(0))]
        seeds = result.setdefault("seeds", {"ant_dir": {}, "ant_vel": {}})
        for seed in args.seeds:  # AntVel first: a third of AntDir's time
            vel = trust_region("ant_vel", scale, ANT_VEL_ITERATIONS, "trpo_radius_hd", seed)
            seeds["ant_vel"][str(seed)] = trained(*vel, ANT_VEL_ITERATIONS, [*EVALUATE_VEL, *same_goals], peak=True,
                                                  config="ant_vel")
            save_json(result)
            seeds["ant_dir"][str(seed)] = ant_dir_recipe(scale, seed)
            save_json(result)
    if "sigma_floor" in args.stages:
        floored = result.setdefault("sigma_floor", {})
        for seed in args.seeds:
            floored[str(seed)] = ant_dir_recipe(scale, seed, SIGMA_FLOOR)
            save_json(result)
    if {"seeds", "sigma_floor"} & set(args.stages):  # from the run folders, which a fresh clone has not
        result["seed_split"] = seed_split(result)
    if "ant_goal_trpo_paper" in args.stages:
        result["ant_goal_trpo_paper"] = trained(*trust_region("ant_goal", scale, ANT_GOAL_ITERATIONS),
                                                ANT_GOAL_ITERATIONS, EVALUATE_GOAL, peak=True, config="ant_goal")
    if "ant_goal_oracle" in args.stages:
        result["ant_goal_oracle"] = paper_oracle("ant_goal", scale, EVALUATE_GOAL)
    if "oracle_trpo_paper" in args.stages:
        for key, config, evaluation in (("oracle_trpo_paper", "ant_dir", EVALUATE),
                                        ("ant_vel_oracle_trpo_paper", "ant_vel", EVALUATE_VEL)):
            result[key] = paper_oracle(config, scale, evaluation)
            save_json(result)  # each oracle kept as soon as it is done: the next one trains for an hour
    if "ppo_oracle" in args.stages:
        result["ppo_oracle"] = ppo_oracle(result.get("ppo_oracle"),
                                          lambda partial: save_json({**result, "ppo_oracle": partial}))
    save_json(result)
    results_io.write_text(out.with_suffix(".md"), markdown(result))
    plot(result, out.with_suffix(".png"))
    print(relative(f"wrote {out}.json, .md and .png"))


if __name__ == "__main__":
    results_io.run(main)
