"""The zoo beside the MAML paper [1]: every entry's held-out table, budget and learning curve.

Reads what ``build_zoo.py`` shipped in ``zoo/<name>/`` — ``eval/adaptation.json`` (return after 0–3 steps on
40 held-out tasks, ± 95 % CI), ``metrics.jsonl`` (environment steps, seconds and training returns of every
meta-iteration) and ``config.yaml`` — and puts each entry beside the paper's numbers and budget
(``maml_paper.py``). Trains nothing.

Usage::

    python benchmarks/zoo_report.py

Writes ``benchmarks/results/zoo.{md,json,png}``: the table docs/zoo.md quotes, and the training
curves (post-adaptation return of each iteration's meta-batch against environment steps, 10-iteration
moving average) with the paper's return after one step as a dashed line.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rl_alphamaml.config import read_yaml
from rl_alphamaml.logging import read_metrics

import results_io
from cli_runs import ROOT
from maml_paper import PAPER
from metaworld_results import pct

ZOO = ROOT / "zoo"
WINDOW = 10


def training(config: dict[str, Any]) -> str:
    """How an entry was meta-trained, in a few words, from its resolved ``config.yaml`` (read, not validated: that
    would import the entry's simulator package, e.g. metaworld)."""
    outer, inner = config["outer"]["optimizer"], config["inner"]
    if outer == "trpo":
        trpo = config["trpo"]
        method = (f"MAML-TRPO, max-KL from {trpo['max_kl']:g} by hypergradient (at most {trpo['max_kl_max']:g})"
                  if trpo.get("max_kl_mode") == "hd" else f"MAML-TRPO, max-KL {trpo['max_kl']:g}")
    elif outer == "promp":
        method = "ProMP" if inner["lr_mode"] == "fixed" else "Alpha-ProMP"
    else:
        method = "Alpha MAML (Adam)" if inner["lr_mode"] == "hd" else f"MAML ({outer})"
    alpha = f"α {inner['lr']:g}" + (" (hd)" if inner["lr_mode"] == "hd" else "")
    model = {"maml2017": ", the paper's Ant", "v5": ", gymnasium's Ant-v5"}.get(config["env"].get("model") or "", "")
    return (f"{method}, {config['train']['iterations']} its × {config['train']['meta_batch']} tasks × "
            f"{config['sampler']['episodes']} episodes, {alpha}{model}")


def entry(folder: Path) -> dict[str, Any]:
    config = read_yaml(folder / "config.yaml")
    rows = read_metrics(folder)
    report = json.loads((folder / "eval" / "adaptation.json").read_text())
    steps, curve, total = 0.0, [], []
    for row in rows:
        steps += row.get("time/env_steps", 0.0)
        total.append(row["returns/post_adapt"])
        window = total[-WINDOW:]
        curve.append([steps, sum(window) / len(window)])
    paper = PAPER.get(folder.name)
    return {
        "name": folder.name, "env": config["env"]["id"],
        # a run resumed with other settings: its config holds the last ones, its COMMAND every phase
        "training": training(config) + ("; resumed with other settings: see its COMMAND"
                                        if "--resume" in (folder / "COMMAND").read_text() else ""),
        "iterations": len(rows), "env_steps": steps,
        "wall_seconds": sum(row.get("time/iteration", 0.0) for row in rows),
        "adaptation": [{"steps": r["steps"], "mean": r["mean"], "ci95": r["ci95"]} for r in report["adaptation"]],
        "metric": report.get("metric", "return"),
        "paper": paper, "curve": curve,
        "videos": sorted(p.name for p in (folder / "eval" / "videos").glob("*.gif")),
    }


def markdown(entries: list[dict[str, Any]]) -> str:
    lines = ["| entry | training | env steps | wall time | after 0 steps | after 1 step | after 2 steps "
             "| after 3 steps | MAML paper (0 / 1 / 2 / 3), oracle | paper's env steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        cells = []
        for r in e["adaptation"]:
            if e.get("metric") == "success_rate":  # Meta-World's protocol: the success rate, on its test goals
                text = f"{pct(r)} success"
            else:
                text = f"{r['mean']:.1f} ± {r['ci95']:.1f}" if r["ci95"] is not None else f"{r['mean']:.1f}"
            cells.append(f"**{text}**" if r["steps"] == 1 else text)
        cells += ["—"] * (4 - len(cells))  # an entry evaluated after fewer steps
        paper = e["paper"]
        if paper is None:
            paper_text, paper_steps = "—", "—"
        else:
            paper_text = " / ".join(f"{v:g}" for v in paper["maml"])
            if paper["oracle"] is not None:
                paper_text += f", oracle {paper['oracle']:g}"
            paper_steps = "—" if paper["env_steps"] is None else (
                f"{paper['env_steps'] / 1e6:.0f} M (ours: {e['env_steps'] / paper['env_steps']:.2f}×)")
        lines.append(f"| `{e['name']}` | {e['training']} | {e['env_steps'] / 1e6:.1f} M | "
                     f"{e['wall_seconds'] / 60:.1f} min | " + " | ".join(cells) + f" | {paper_text} | {paper_steps} |")
    return "\n".join(lines)


def plot(entries: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = min(3, len(entries))
    rows = (len(entries) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), dpi=110, squeeze=False,
                             constrained_layout=True)
    for ax, e in zip(axes.flat, entries):
        xs = [p[0] / 1e6 for p in e["curve"]]
        ax.plot(xs, [p[1] for p in e["curve"]], label="ours: training meta-batch after 1 step")
        if e["paper"] is not None:
            ax.axhline(e["paper"]["maml"][1], color="k", ls="--", lw=1, label="MAML paper, 1 step (held out)")
        ax.set_title(e["name"], fontsize=10)
        ax.set_xlabel("environment steps (M)")
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(entries):]:
        ax.axis("off")
    results_io.save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="output folder")
    args = parser.parse_args()
    entries = [entry(folder) for folder in sorted(ZOO.iterdir()) if (folder / "eval" / "adaptation.json").is_file()]
    text = markdown(entries)
    note = (f"Held-out return on 40 tasks (± 95 % CI) after 0–3 steps, from each `zoo/<name>/eval/adaptation.json` "
            f"(a Meta-World entry: its success rate on the class's 50 test goals with Meta-World's protocol, one "
            f"step); "
            f"env steps and wall time summed over `metrics.jsonl` (this 2-core CPU machine). The paper's numbers "
            f"and budgets: `benchmarks/maml_paper.py`. Curves: `zoo.png` ({WINDOW}-iteration moving average of the "
            f"training meta-batch's post-adaptation return). Command: `python benchmarks/zoo_report.py`.")
    results_io.write_text(args.out / "zoo.md", f"# The zoo beside the MAML paper\n\n{text}\n\n{note}\n")
    results_io.write_text(args.out / "zoo.json", json.dumps(entries, indent=1) + "\n")
    plot(entries, args.out / "zoo.png")
    print(text)
    print(f"\nwrote {args.out / 'zoo'}.{{md,json,png}}")


if __name__ == "__main__":
    results_io.run(main)
