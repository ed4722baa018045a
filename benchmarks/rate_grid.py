"""Shared parts of the rate-robustness studies (``omniglot_rate_grid.py``, ``rl_rate_grid.py``).

Both train MAML (α, β fixed) and Alpha MAML (α, β started at the same values and adapted by hypergradient,
Behl, Baydin & Torr 2019) on every cell of an initial-α × initial-β grid and report one held-out metric per
cell. This module keeps the finished cells in a resumable JSON file and renders the Markdown tables and the
heat-map from them.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

METHODS = ("maml", "alpha_maml")
LABELS = {"maml": "MAML (fixed α, β)", "alpha_maml": "Alpha MAML (α, β by hypergradient)"}


def key(method: str, alpha: float, beta: float) -> str:
    return f"{method}|{alpha:g}|{beta:g}"


class GridStore:
    """Finished cells in ``path``; cells of an earlier run are reused only if its ``settings`` match."""

    def __init__(self, path: Path, settings: dict[str, Any], fresh: bool) -> None:
        self.path = path
        self.settings = settings
        self.cells: dict[str, dict[str, Any]] = {}
        self.load_average_at_start = os.getloadavg()
        if path.exists() and not fresh:
            previous = json.loads(path.read_text())
            normalized = json.loads(json.dumps(settings))  # tuples read back as lists
            same = all(previous.get("settings", {}).get(k) == v for k, v in normalized.items()
                       if k not in ("alphas", "betas"))
            if same:
                self.cells = {key(c["method"], c["alpha0"], c["beta0"]): c for c in previous["cells"]}
                if self.cells:
                    print(f"continuing: {len(self.cells)} finished cells in {path}", file=sys.stderr)

    def todo(self, alphas: list[float], betas: list[float]) -> list[tuple[str, float, float]]:
        return [(m, a, b) for a in alphas for b in betas for m in METHODS if key(m, a, b) not in self.cells]

    def add(self, cell: dict[str, Any]) -> None:
        self.cells[key(cell["method"], cell["alpha0"], cell["beta0"])] = cell
        self.save()

    def get(self, method: str, alpha: float, beta: float) -> dict[str, Any] | None:
        return self.cells.get(key(method, alpha, beta))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({
            "settings": self.settings,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                        "load_average_at_start": self.load_average_at_start},
            "cells": list(self.cells.values()),
        }, indent=2) + "\n")


def tables(store: GridStore, alphas: list[float], betas: list[float], header: list[str],
           fmt: Callable[[dict[str, Any] | None], str], score: Callable[[dict[str, Any]], float],
           summary_note: str, good: Callable[[float], bool], good_text: str) -> str:
    """Markdown: a table per method (rows α₀, columns β₀), Alpha MAML's final rates, and a summary line
    per method (mean and worst cell of ``score``, cells that are ``good``)."""
    out = list(header)
    for method in METHODS:
        out += [f"**{LABELS[method]}**", "", "| α₀ \\ β₀ | " + " | ".join(f"{b:g}" for b in betas) + " |",
                "| --- |" + " --- |" * len(betas)]
        for a in alphas:
            out.append(f"| {a:g} | " + " | ".join(fmt(store.get(method, a, b)) for b in betas) + " |")
        out.append("")
    out += ["**Alpha MAML: final α / β** (started at the row's α₀ and the column's β₀)", "",
            "| α₀ \\ β₀ | " + " | ".join(f"{b:g}" for b in betas) + " |", "| --- |" + " --- |" * len(betas)]
    for a in alphas:
        cells = []
        for b in betas:
            c = store.get("alpha_maml", a, b)
            cells.append("—" if c is None else f"{c['final_alpha']:.3g} / {c['final_beta']:.2g}")
        out.append(f"| {a:g} | " + " | ".join(cells) + " |")
    summary = []
    for method in METHODS:
        scores = [score(c) for a in alphas for b in betas if (c := store.get(method, a, b)) is not None]
        if scores:
            summary.append(f"{LABELS[method]}: mean over cells {sum(scores) / len(scores):.1f}, worst cell "
                           f"{min(scores):.1f}, cells {good_text}: {sum(map(good, scores))}/{len(scores)}")
    return "\n".join([*out, "", *summary, "", summary_note])


def heatmap(store: GridStore, alphas: list[float], betas: list[float], path: Path, title: str,
            value: Callable[[dict[str, Any]], float | None], label: str, vmin: float, vmax: float,
            beta_label: str = "initial β (outer rate, Adam)") -> None:
    """Two heat-maps (MAML, Alpha MAML) of ``value`` per cell; Alpha-MAML cells also show the final α, β."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), dpi=120, constrained_layout=True)
    image: Any = None
    midpoint = vmin + 0.6 * (vmax - vmin)
    for ax, method in zip(axes, METHODS):
        grid = np.full((len(alphas), len(betas)), np.nan)
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                c = store.get(method, a, b)
                v = None if c is None else value(c)
                if v is not None:
                    grid[i, j] = v
        image = ax.imshow(grid, vmin=vmin, vmax=vmax, cmap="viridis", origin="lower")
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                c = store.get(method, a, b)
                v = None if c is None else value(c)
                text = "" if c is None else ("div." if v is None else f"{v:.0f}")
                if method == "alpha_maml" and c is not None:
                    text += f"\nα {c['final_alpha']:.2g}\nβ {c['final_beta']:.1g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if np.isnan(grid[i, j]) or grid[i, j] < midpoint else "black")
        ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
        ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        ax.set_xlabel(beta_label)
        ax.set_ylabel("initial α (inner rate)")
        ax.set_title(LABELS[method], fontsize=10)
    fig.colorbar(image, ax=list(axes), label=label, shrink=0.9)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path)
    plt.close(fig)
