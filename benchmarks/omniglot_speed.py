"""Omniglot meta-training speed on CPU: the trainer against a plain per-task functional loop, same run.

Setting: 5-way 1-shot, meta-batch 32, 15 queries per class, second-order MAML [1] with 1 and with 5 inner
steps, MAML's conv net, float32. Methods, timed round by round
(interleaved, so that load from other processes hits all of them alike):

* ``plain loop`` — the reference: a per-task functional loop as one writes it with learn2learn [2] or
  ``torch.func``: for each task, adapt with ``functional_call`` (the core's ``adapt``), score the query
  set, ``backward()`` into ``.grad``; then one ``torch.optim.Adam`` step. It runs in a child process with
  glibc's default ``malloc`` settings, at torch's default thread count (``plain loop, default threads``)
  and at 1 thread.
* ``loop, reused memory`` — the same loop in this process, where ``reuse_freed_memory()`` is on.
* ``trainer p8 w2 t1, default malloc`` — the default trainer settings with ``compute.reuse_memory: false``
  (child process), to show what the allocator setting is worth.
* ``trainer pN wW tT`` — ``OmniglotExperiment.train_iteration`` (task sampling, metrics and the
  ``MetaOptimizer`` step included): ``compute.tasks_per_pass = N`` tasks per batched pass
  (``forward_tasks``, grouped convolutions), ``compute.workers = W`` threads running passes, ``T`` torch
  threads in the main thread (used when W = 1).

It prints a table — mean, median and best seconds per meta-iteration, and speed-ups (the reference's time
over the method's, from means: throughput over the rounds, and from medians: a typical iteration) — and
writes ``benchmarks/results/omniglot_speed.json``. Timings on a shared machine are noisy: the table
records the load average, and the JSON every round's time.

Usage::

    python benchmarks/omniglot_speed.py
    python benchmarks/omniglot_speed.py --rounds 3 --steps 1

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Arnold, Mahajan, Datta, Bunner & Zarkias, "learn2learn: A Library for Meta-Learning Research", 2020.
        https://arxiv.org/abs/2008.12284
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from rl_alphamaml import seeding
from rl_alphamaml.config import from_dict
from rl_alphamaml.meta import adapt, call
from rl_alphamaml.supervised.omniglot import load_omniglot
from rl_alphamaml.supervised.omniglot_trainer import OmniglotConfig, OmniglotExperiment

import results_io
from cli_runs import OMNIGLOT_HELP, ROOT, omniglot_root


def make_config(steps: int, meta_batch: int, queries: int, passes: int = 1, workers: int = 1,
                reuse_memory: bool = True) -> OmniglotConfig:
    return from_dict(OmniglotConfig, {
        "data": {"n_way": 5, "k_shot": 1, "q_query": queries},
        "inner": {"steps": steps, "lr": 0.4},
        "train": {"meta_batch": meta_batch, "iterations": 10**6},
        "eval": {"val_every": 0},
        "compute": {"tasks_per_pass": passes, "workers": workers, "reuse_memory": reuse_memory},
    })


def plain_loop(experiment: OmniglotExperiment, meta_batch: int) -> Callable[[int], None]:
    """The reference: per-task adapt → query loss → backward, then Adam (learn2learn's pattern)."""
    net = experiment.model
    params = dict(net.named_parameters())
    alpha = {n: torch.tensor(experiment.config.inner.lr) for n in params}
    steps = experiment.config.inner.steps
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sampler = experiment.sampler("train")

    def support_loss(p: dict[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(call(net, p, {}, xs), ys)

    def iteration(i: int) -> None:
        batch = sampler.sample_batch(meta_batch, seeding.rng(0, "train", i))
        opt.zero_grad()
        for t in range(meta_batch):
            xs, ys, xq, yq = batch.support_x[t], batch.support_y[t], batch.query_x[t], batch.query_y[t]
            fast = adapt(params, partial(support_loss, xs=xs, ys=ys), alpha, steps)
            (F.cross_entropy(call(net, fast.params, {}, xq), yq) / meta_batch).backward()
        opt.step()

    return iteration


def _remote_worker(conn: Any, root: Path | None, steps: int, threads: int, meta_batch: int, queries: int,
                   trainer: tuple[int, int] | None) -> None:
    """Child process with glibc's default malloc: the plain loop, or the trainer (passes, workers) with
    ``reuse_memory: false``; times one iteration per request."""
    if threads > 0:
        torch.set_num_threads(threads)
    data = load_omniglot(root)
    if trainer is None:
        exp = OmniglotExperiment(make_config(steps, meta_batch, queries, reuse_memory=False), None, dataset=data)
        run: Callable[[int], Any] = plain_loop(exp, meta_batch)
    else:
        exp = OmniglotExperiment(make_config(steps, meta_batch, queries, *trainer, reuse_memory=False), None,
                                 dataset=data)

        def run(i: int) -> Any:
            return exp.train_iteration(i, None)

    conn.send(torch.get_num_threads())
    while True:
        i = conn.recv()
        if i is None:
            return
        t0 = time.perf_counter()
        run(i)
        conn.send(time.perf_counter() - t0)


class Remote:
    """A method timed in a child process (so that this process's malloc settings do not reach it)."""

    def __init__(self, root: Path | None, steps: int, threads: int, meta_batch: int, queries: int,
                 trainer: tuple[int, int] | None = None) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_remote_worker,
                                args=(child, root, steps, threads, meta_batch, queries, trainer), daemon=True)
        self.proc.start()
        self.threads = int(self.conn.recv())

    def __call__(self, i: int) -> float:
        self.conn.send(i)
        return float(self.conn.recv())

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(timeout=30)


def local(fn: Callable[[int], Any], threads: int) -> Callable[[int], float]:
    def timed(i: int) -> float:
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        fn(i)
        return time.perf_counter() - t0

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help=OMNIGLOT_HELP)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--rounds", type=int, default=5, help="timed iterations of each method (after 1 warm-up)")
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "omniglot_speed.json")
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    root = omniglot_root(args.data)
    data = load_omniglot(root)
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    reference = f"plain loop, {default_threads} threads (torch default)"
    for steps in args.steps:
        remotes = [Remote(root, steps, 0, args.meta_batch, args.queries),
                   Remote(root, steps, 1, args.meta_batch, args.queries),
                   Remote(root, steps, 1, args.meta_batch, args.queries, trainer=(8, 2))]
        methods: dict[str, Callable[[int], float]] = {
            reference: remotes[0],
            "plain loop, 1 thread": remotes[1],
            "trainer p8 w2 t1, default malloc": remotes[2],
        }
        mb, q = args.meta_batch, args.queries
        ref_exp = OmniglotExperiment(make_config(steps, mb, q), None, dataset=data)
        methods["loop, reused memory, 1 thread"] = local(plain_loop(ref_exp, mb), 1)
        for passes, workers, threads in [(1, 1, 1), (8, 1, 1), (32, 1, 1), (8, 1, 2), (8, 2, 1), (4, 2, 1)]:
            exp = OmniglotExperiment(make_config(steps, mb, q, passes, workers), None, dataset=data)
            methods[f"trainer p{passes} w{workers} t{threads}"] = local(partial(exp.train_iteration, logger=None),
                                                                        threads)
        times: dict[str, list[float]] = {name: [] for name in methods}
        for fn in methods.values():  # warm-up (allocator, oneDNN primitive caches)
            fn(0)
        for r in range(1, args.rounds + 1):
            for name, fn in methods.items():
                times[name].append(fn(r))
        for remote in remotes:
            remote.close()
        ref_median = statistics.median(times[reference])
        ref_mean = statistics.fmean(times[reference])
        one_median = statistics.median(times["plain loop, 1 thread"])
        for name, ts in times.items():
            med, mean = statistics.median(ts), statistics.fmean(ts)
            rows.append({"inner_steps": steps, "method": name, "mean_s": mean, "median_s": med, "best_s": min(ts),
                         "iterations_per_s": 1 / mean, "speedup_vs_reference_mean": ref_mean / mean,
                         "speedup_vs_reference_median": ref_median / med,
                         "speedup_vs_plain_loop_1_thread_median": one_median / med, "times_s": ts})
            print(f"steps={steps} {name:>36}: mean {mean:.3f} s/it, median {med:.3f}, best {min(ts):.3f}; "
                  f"reference/this: {ref_mean / mean:.2f} (means), {ref_median / med:.2f} (medians)", flush=True)
    torch.set_num_threads(default_threads)

    lines = [f"5-way 1-shot, meta-batch {args.meta_batch}, {args.queries} queries/class, second-order MAML, float32; "
             f"seconds per meta-iteration over {args.rounds} interleaved rounds. Speed-up = reference time / time; "
             f"reference: {reference}.",
             "", "| inner steps | method | mean s/it | median s/it | best s/it | it/s (mean) | speed-up (means) "
             "| speed-up (medians) | vs plain loop, 1 thread (medians) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['inner_steps']} | {row['method']} | {row['mean_s']:.3f} | {row['median_s']:.3f} "
                     f"| {row['best_s']:.3f} | {row['iterations_per_s']:.2f} | {row['speedup_vs_reference_mean']:.2f}x "
                     f"| {row['speedup_vs_reference_median']:.2f}x "
                     f"| {row['speedup_vs_plain_loop_1_thread_median']:.2f}x |")
    table = "\n".join(lines)
    print("\n" + table)
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} CPUs; "
          f"{time.perf_counter() - started:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results_io.write_text(args.out, json.dumps({
        "setting": {"n_way": 5, "k_shot": 1, "queries": args.queries, "meta_batch": args.meta_batch,
                    "second_order": True, "dtype": "float32", "rounds": args.rounds},
        "reference": reference,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "torch_default_threads": default_threads,
                    "load_average_before": load_before, "load_average_after": load_after},
        "rows": rows,
        "table_markdown": table,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    results_io.run(main)
