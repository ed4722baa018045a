"""The MAML paper's [1] RL numbers, with the settings and budgets behind them, for every script that compares.

Returns after 0 / 1 / 2 / 3 policy-gradient steps on 40 held-out tasks, read from the MAML authors' result
files (Fig. 5 and the appendix), the oracle (a policy trained on each task's own reward) and the pretrained
baseline where the paper has them. The paper ran rllab's robots (its HalfCheetah at dt 0.01), this project
Gymnasium v5's (HalfCheetah and Ant at dt 0.05), 200 steps each: per-step rewards are velocities in m/s (or
distances) minus costs in both, so returns are in the same units — but not on the same simulator, so compare
with that in mind.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

from typing import Any

PAPER: dict[str, dict[str, Any]] = {
    "halfcheetah_dir": {
        "env": "rl_alphamaml/HalfCheetahDir-v0",
        "maml": [-50.7, 293.2, 313.5, 315.7], "pretrained": [-43.0, -24.7], "oracle": 442.7,
        "settings": "100 iterations × 40 tasks × 20 episodes, α 0.1, max-KL 0.02", "env_steps": 64_000_000,
    },
    "halfcheetah_vel": {
        "env": "rl_alphamaml/HalfCheetahVel-v0",
        "maml": [-129.5, -78.6, -66.6, -60.8], "pretrained": [-158.0, -135.4], "oracle": -54.5,
        "settings": "475 iterations × 40 tasks × 10 episodes, α 0.1, max-KL 0.01", "env_steps": 76_000_000,
    },
    "navigation2d": {
        "env": "rl_alphamaml/Navigation2D-v0",
        "maml": [-40.41, -11.68, -3.33, -3.23], "pretrained": None, "oracle": None,
        "settings": "evaluated with 40 episodes per step, α 0.5 then 0.25", "env_steps": None,
    },
    "ant_vel": {
        "env": "rl_alphamaml/AntVel-v0",
        "maml": [30.6, 96.7, 100.1, 101.4], "pretrained": None, "oracle": 107.9,
        "settings": "375 iterations × 40 tasks × 20 episodes, α 0.1", "env_steps": 120_000_000,
    },
    "ant_dir": {
        "env": "rl_alphamaml/AntDir-v0",
        "maml": [8.7, 499.1, 500.7, 499.1], "pretrained": None, "oracle": 524.8,
        "settings": "575 iterations × 40 tasks × 40 episodes, α 0.1", "env_steps": 368_000_000,
    },
}
