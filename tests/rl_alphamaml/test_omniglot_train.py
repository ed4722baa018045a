"""Omniglot meta-training: batched meta-gradients equal the per-task loop, learning, CLI train/evaluate, errors.

Reads the real data (``OMNIGLOT_ROOT`` below; skipped when it is absent); the images are preprocessed once
per session into a temporary cache.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from rl_alphamaml.cli import main
from rl_alphamaml.config import from_dict
from rl_alphamaml.logging import read_metrics
from rl_alphamaml.meta import adapt, call, call_batched, expand_params
from rl_alphamaml.supervised import omniglot_download
from rl_alphamaml.supervised.convnet import ConvNet
from rl_alphamaml.supervised.omniglot import ENV_ROOT, SETS, OmniglotDataset, OmniglotSplit, load_omniglot, make_split
from rl_alphamaml.supervised.omniglot_trainer import (
    OmniglotConfig,
    OmniglotExperiment,
    evaluate,
    forward_tasks,
)

ROOT = Path(__file__).resolve().parents[2]
# $RL_ALPHAMAML_OMNIGLOT, else the copy beside the checkout on the project's machines, else the user data folder.
_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "omniglot"
OMNIGLOT_ROOT = Path(os.environ.get("RL_ALPHAMAML_OMNIGLOT")
                     or (_SHARED if _SHARED.is_dir() else omniglot_download.default_data_dir()))
CONFIG = ROOT / "configs" / "omniglot_5w1s.yaml"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("omniglot_train_cache")


@pytest.fixture(scope="session")
def data(cache_dir: Path) -> OmniglotDataset:
    if not all((OMNIGLOT_ROOT / f"images_{s}.zip").is_file() for s in SETS):
        pytest.skip(f"Omniglot zips not found in {OMNIGLOT_ROOT}")
    return load_omniglot(OMNIGLOT_ROOT, cache_dir=cache_dir)


def make_config(**sections: dict[str, Any]) -> OmniglotConfig:
    raw: dict[str, Any] = {"data": {"q_query": 5}, "train": {"meta_batch": 5}, "eval": {"val_every": 0}}
    for key, values in sections.items():
        raw.setdefault(key, {}).update(values)
    return from_dict(OmniglotConfig, raw)


def cli_data_args(cache_dir: Path) -> list[str]:
    return ["--set", f"data.root={OMNIGLOT_ROOT}", "--set", f"data.cache_dir={cache_dir}"]


# ------------------------------------------------------------------------------ meta-gradient checks


def test_forward_tasks_equals_functional_call_and_vmap() -> None:
    torch.manual_seed(0)
    for downsample in ("stride", "maxpool"):
        net = ConvNet(5, downsample=downsample).double()
        params = {n: p + 0.1 * torch.randn_like(p) for n, p in expand_params(dict(net.named_parameters()), 3).items()}
        x = torch.rand(3, 7, 1, 28, 28, dtype=torch.float64)
        got = forward_tasks(net, params, x)
        for t in range(3):
            one = functional_call(net, {n: p[t] for n, p in params.items()}, (x[t],))
            torch.testing.assert_close(got[t], one, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got, call_batched(net, params, {}, x), rtol=1e-12, atol=1e-12)


def per_task_meta_loss(exp: OmniglotExperiment, batch: Any) -> torch.Tensor:
    """The reference: a plain loop over tasks, one functional_call per task (MAML, Finn et al. 2017)."""
    net, inner = exp.model, exp.config.inner
    alpha = [exp.meta.alpha.for_params(j) for j in range(exp.meta.alpha.steps)]  # one α, or one per step
    losses = []
    for t in range(len(batch)):
        xs, ys, xq, yq = batch.support_x[t], batch.support_y[t], batch.query_x[t], batch.query_y[t]
        fast = adapt(exp.meta.params, lambda p, xs=xs, ys=ys: F.cross_entropy(call(net, p, {}, xs), ys),
                     alpha, inner.steps, inner.first_order)
        losses.append(F.cross_entropy(call(net, fast.params, {}, xq), yq))
    return torch.stack(losses).mean()


@pytest.mark.parametrize(
    "inner,downsample",
    [
        ({"steps": 1, "lr": 0.4, "lr_mode": "hd"}, "stride"),  # Alpha MAML, second order
        ({"steps": 2, "lr": 0.2, "lr_mode": "hd", "lr_shape": "per_layer"}, "stride"),
        ({"steps": 1, "lr": 0.1, "lr_mode": "learned", "lr_shape": "per_parameter"}, "stride"),  # Meta-SGD
        ({"steps": 2, "lr": 0.3, "lr_mode": "hd", "first_order": True}, "stride"),  # first order
        ({"steps": 2, "lr": 0.4, "lr_mode": "hd"}, "maxpool"),
        ({"steps": 2, "lr": 0.3, "lr_mode": "hd", "lr_shape": "per_layer", "lr_per_step": True}, "stride"),
    ],
)
def test_batched_meta_gradient_equals_the_per_task_loop(
    data: OmniglotDataset, inner: dict[str, Any], downsample: str
) -> None:
    # float64; 5 tasks in passes of 2, 2 and 1 on two worker threads
    config = make_config(inner=inner, model={"downsample": downsample},
                         compute={"tasks_per_pass": 2, "workers": 2})
    exp = OmniglotExperiment(config, None, dataset=data, dtype=torch.float64)
    with torch.no_grad():  # per-step rates: α₂ ≠ α₁
        for t in exp.meta.alpha.tensors[exp.meta.alpha.groups:]:
            t.mul_(0.5)
    batch = exp.sampler("train").sample_batch(5, np.random.default_rng(0))
    got, metrics = exp.meta_gradients(batch)
    ref = exp.meta.gradients(per_task_meta_loss(exp, batch))

    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert metrics["loss/post_adapt"] == pytest.approx(ref.loss, rel=1e-12)
    scale = float(torch.sqrt(sum(g.pow(2).sum() for g in ref.theta.values())))
    assert scale > 1e-3  # not vacuous
    for name, g in ref.theta.items():
        torch.testing.assert_close(got.theta[name], g, rtol=1e-9, atol=1e-12 * scale, msg=name)
    # A conv bias right before batch norm (batch statistics) cannot change the output: its true gradient
    # is exactly 0 and both computations return rounding noise for it. Comparing those noise values
    # element by element gives large *relative* differences; that is not a batching error.
    for name in (n for n in ref.theta if n.endswith("conv.bias")):
        assert float(ref.theta[name].abs().max()) < 1e-12 * scale
    assert ref.alpha is not None and got.alpha is not None
    alpha_scale = float(torch.sqrt(sum(h.pow(2).sum() for h in ref.alpha)))
    assert alpha_scale > 1e-6
    for h_got, h_ref in zip(got.alpha, ref.alpha):  # (α of a conv bias: rounding noise, as above)
        torch.testing.assert_close(h_got, h_ref, rtol=1e-9, atol=1e-12 * alpha_scale)


def test_vmap_meta_gradient_agrees_too(data: OmniglotDataset) -> None:
    # The core's call_batched (torch.func.vmap over functional_call) with batch norm gives the loop's
    # meta-gradient as well, once the conv biases (exact gradient 0, see above) are compared at the
    # gradient's scale rather than element by element.
    config = make_config(inner={"steps": 2, "lr": 0.4, "lr_mode": "hd"})
    exp = OmniglotExperiment(config, None, dataset=data, dtype=torch.float64)
    batch = exp.sampler("train").sample_batch(4, np.random.default_rng(1))
    net = exp.model
    params = expand_params(exp.meta.params, 4)

    def support_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = call_batched(net, p, {}, batch.support_x)
        return F.cross_entropy(logits.flatten(0, 1), batch.support_y.flatten(), reduction="sum") / logits.shape[1]

    fast = exp.meta.adapt(support_loss, params)
    logits = call_batched(net, fast.params, {}, batch.query_x)
    vmapped = exp.meta.gradients(F.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten()))
    ref = exp.meta.gradients(per_task_meta_loss(exp, batch))
    scale = float(torch.sqrt(sum(g.pow(2).sum() for g in ref.theta.values())))
    for name, g in ref.theta.items():
        torch.testing.assert_close(vmapped.theta[name], g, rtol=1e-9, atol=1e-12 * scale, msg=name)
    assert vmapped.alpha is not None and ref.alpha is not None
    torch.testing.assert_close(vmapped.alpha[0], ref.alpha[0], rtol=1e-9, atol=0.0)


def test_passes_and_workers_change_nothing_but_speed(data: OmniglotDataset) -> None:
    def one_iteration(passes: int, workers: int) -> dict[str, float]:
        config = make_config(compute={"tasks_per_pass": passes, "workers": workers}, train={"meta_batch": 6})
        scalars = OmniglotExperiment(config, None, dataset=data).train_iteration(1, None)
        return {k: v for k, v in scalars.items() if not k.startswith("time/")}

    reference = one_iteration(2, 1)
    assert one_iteration(2, 2) == reference  # same passes on threads: bit for bit
    for key, value in one_iteration(6, 1).items():  # other passes: equal to float32 rounding
        assert value == pytest.approx(reference[key], rel=1e-4, abs=1e-6), key


# ---------------------------------------------------------------------------------------- learning


def test_short_training_beats_chance_on_test_characters(data: OmniglotDataset) -> None:
    # 5-way 1-shot, 200 meta-iterations of 16 tasks (5 queries per class), Adam beta 0.003: ~25 s on 2 cores.
    # Measured: about 75 % after 3 steps on 100 tasks of the 423 held-out characters; chance is 20 %.
    config = make_config(outer={"lr": 0.003}, train={"meta_batch": 16, "iterations": 200},
                         compute={"tasks_per_pass": 8, "workers": 2})
    torch.set_num_threads(1)
    exp = OmniglotExperiment(config, None, dataset=data)
    started = time.perf_counter()
    for iteration in range(1, 201):
        last = exp.train_iteration(iteration, None)
    seconds = time.perf_counter() - started
    result = evaluate(exp, tasks=100, steps=3, seed=12345)
    rows = result.summary()
    print(f"\n200 iterations in {seconds:.1f} s; test accuracy after 0..3 steps: "
          f"{[round(r['mean'], 3) for r in rows]} (±{rows[3]['ci95']:.3f})")
    assert abs(rows[0]["mean"] - 0.2) < 0.05  # before adaptation: chance (labels are shuffled per task)
    assert rows[3]["mean"] > 0.5  # clearly above the 20 % chance level
    assert rows[3]["mean"] - rows[3]["ci95"] > 0.4
    assert last["accuracy/post_adapt"] > 0.4
    characters = {c for task in result.tasks for c in task["characters"]}
    assert characters <= set(exp.split.test)  # held-out characters only


# ------------------------------------------------------------------------------------------ the CLI


def test_cli_train_resume_and_evaluate(data: OmniglotDataset, cache_dir: Path, tmp_path: Path) -> None:
    small = ["--set", "train.meta_batch=4", "--set", "train.checkpoint_every=2", "--set", "eval.val_every=2",
             "--set", "eval.val_tasks=4", *cli_data_args(cache_dir)]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["train", str(CONFIG), "--run-dir", str(straight), "--set", "train.iterations=4", *small]) == 0
    records = read_metrics(straight)
    assert [r["iteration"] for r in records] == [1, 2, 3, 4]
    for tag in ("accuracy/pre_adapt", "accuracy/post_adapt", "loss/pre_adapt", "loss/post_adapt", "meta/alpha",
                "meta/beta", "time/iteration_s"):
        assert tag in records[0], tag
    assert "accuracy/val_post_adapt" in records[1] and "accuracy/val_post_adapt" not in records[0]
    saved = OmniglotSplit.load(straight / "omniglot_split.json")
    assert saved == make_split(data, "vinyals", seed=0, num_val=100)

    # stop after 2 iterations, resume to 4: the same numbers, and the run keeps its split file
    assert main(["train", str(CONFIG), "--run-dir", str(resumed), "--set", "train.iterations=2", *small]) == 0
    split_text = (resumed / "omniglot_split.json").read_text()
    assert main(["train", "--resume", str(resumed), "--set", "train.iterations=4"]) == 0
    assert (resumed / "omniglot_split.json").read_text() == split_text

    def untimed(run: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_metrics(run)]

    assert untimed(resumed) == untimed(straight)

    assert main(["evaluate", str(straight), "--tasks", "20", "--steps", "3"]) == 0
    assert json.loads((straight / "eval" / "accuracy.json").read_text())["alpha_steps"] is None
    report = json.loads((straight / "eval" / "adaptation.json").read_text())
    assert report["metric"] == "accuracy" and report["higher_is_better"] and report["num_tasks"] == 20
    assert [r["steps"] for r in report["adaptation"]] == [0, 1, 2, 3]
    assert all(0 <= r["mean"] <= 1 and r["ci95"] >= 0 for r in report["adaptation"])
    accuracy = json.loads((straight / "eval" / "accuracy.json").read_text())
    assert accuracy["num_tasks"] == 20 and accuracy["protocol"] == "vinyals" and accuracy["steps"] == 3
    assert accuracy["mean"] == pytest.approx(report["adaptation"][3]["mean"])
    assert accuracy["ci95"] == pytest.approx(report["adaptation"][3]["ci95"])
    assert accuracy["checkpoint_iteration"] == 4
    assert {c for t in report["tasks"] for c in t["characters"]} <= set(saved.test)
    assert (straight / "eval" / "adaptation.png").stat().st_size > 1000


def test_per_step_rates_adapt_step_by_step_at_test_time(data: OmniglotDataset) -> None:
    """Step k of test-time adaptation uses α_{k+1}, and every step past the trained ones α_K: with α₂ = 0 the
    accuracy after 2, 3 and 4 steps is the accuracy after 1; ``evaluate`` reports α₁, α₂."""
    config = make_config(inner={"steps": 2, "lr": 0.4, "lr_mode": "hd", "lr_per_step": True})
    exp = OmniglotExperiment(config, None, dataset=data)
    with torch.no_grad():
        exp.meta.alpha.tensors[1].zero_()
    result = evaluate(exp, tasks=10, steps=4, seed=3)
    means = [row["mean"] for row in result.summary()]
    assert means[1] != means[0] and means[1] == means[2] == means[3] == means[4]
    assert result.extra["accuracy"]["alpha_steps"] == [pytest.approx(0.4), 0.0]


def test_a_bad_data_root_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def error_line() -> str:
        err = capsys.readouterr().err.strip()
        assert "Traceback" not in err
        lines = [line for line in err.splitlines() if line.startswith("rl-alphamaml: error: ")]
        assert len(lines) == 1 and err.splitlines()[-1] == lines[0], err  # one line, the last one
        return lines[0]

    missing = tmp_path / "no_omniglot_here"
    assert main(["train", str(CONFIG), "--run-dir", str(tmp_path / "run"), "--set", f"data.root={missing}"]) == 2
    err = error_line()
    assert str(missing) in err and "does not exist" in err and "images_background" in err and "data.root" in err

    (tmp_path / "empty").mkdir()
    assert main(["train", str(CONFIG), "--run-dir", str(tmp_path / "run2"), "--set",
                 f"data.root={tmp_path / 'empty'}"]) == 2
    err = error_line()
    assert "neither images_background/ nor images_background.zip" in err

    monkeypatch.delenv(ENV_ROOT, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "no_user_data"))  # and nothing in the user data folder
    assert main(["train", str(CONFIG), "--run-dir", str(tmp_path / "run3")]) == 2
    err = error_line()
    assert "no Omniglot data: run `rl-alphamaml data omniglot`" in err and ENV_ROOT in err
