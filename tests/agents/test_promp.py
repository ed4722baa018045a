"""ProMP (Rothfuss et al. 2019) as an outer step: the clipped objective, the KL penalty and its coefficient,
learning on Navigation2D, and resuming a run bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agents.maml_pg import MAMLPG, AdvantageConfig, surrogate
from agents.outer_steps import ProMPConfig, ProMPStep, adapt_kl_coefficient, clipped_surrogate
from agents.policy import GaussianMLPPolicy
from agents.sampler import Sampler
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.errors import ConfigError
from rl_alphamaml.logging import read_metrics
from rl_alphamaml.meta import InnerConfig, MetaOptimizer, OuterConfig
from rl_alphamaml.runner import prepare_run_dir, train

ROOT = Path(__file__).resolve().parents[2]
NAV = ROOT / "configs" / "navigation2d.yaml"
PROMP = ["outer.optimizer=promp", "inner.estimator=lvc"]


def make_learner(config: ProMPConfig, dtype: torch.dtype = torch.float64, steps: int = 1) -> MAMLPG:
    sampler = Sampler("rl_alphamaml/Navigation2D-v0", num_tasks=3, episodes=4, horizon=20)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(16, 16)).to(dtype)
    meta = MetaOptimizer(policy, InnerConfig(steps=steps, lr=0.5), OuterConfig(optimizer="adam", lr=0.01))
    return MAMLPG(policy, meta, sampler, ProMPStep(config, steps), AdvantageConfig(), estimator="lvc")


def theta_grad(loss: torch.Tensor, learner: MAMLPG) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(learner.meta.params.values()))])


def test_the_clipped_objective_has_the_unclipped_gradient_at_the_sampling_policy() -> None:
    learner = make_learner(ProMPConfig())
    batch = learner.collect(learner.sampler.sample_tasks(np.random.default_rng(0)), (0, 0))
    clipped = clipped_surrogate(learner.policy, learner.adapt(batch), batch.val, 0.2)
    plain = surrogate(learner.policy, learner.adapt(batch), batch.val)
    torch.testing.assert_close(clipped, plain, rtol=1e-12, atol=1e-12)
    g_clipped, g_plain = theta_grad(clipped, learner), theta_grad(plain, learner)
    assert float(g_plain.norm()) > 1e-3
    torch.testing.assert_close(g_clipped, g_plain, rtol=1e-10, atol=1e-12)
    # Far from the sampling policy the clip binds: a pessimistic bound with a different gradient.
    with torch.no_grad():
        for p in learner.meta.params.values():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=p.dtype) * 0.3)
    clipped = clipped_surrogate(learner.policy, learner.adapt(batch), batch.val, 0.2)
    plain = surrogate(learner.policy, learner.adapt(batch), batch.val)
    assert float(clipped.detach()) > float(plain.detach())
    assert not torch.allclose(theta_grad(clipped, learner), theta_grad(plain, learner), rtol=1e-3)


def test_the_all_steps_meta_loss_averages_every_steps_clipped_objective() -> None:
    """With two inner steps and ``meta_loss`` ``all_steps``, J^CLIP is the mean of θ₁'s (on the episodes θ₁
    sampled) and θ₂'s (on the validation episodes); the KL penalty is unchanged."""
    learner = make_learner(ProMPConfig(), steps=2)
    step = ProMPStep(ProMPConfig(), 2)
    batch = learner.collect(learner.sampler.sample_tasks(np.random.default_rng(0)), (0, 0))
    with torch.no_grad():  # away from the sampling policy, where the clip binds and the steps' objectives differ
        for p in learner.meta.params.values():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=p.dtype) * 0.3)
    last = step.objective(learner, batch)
    learner.meta_loss_steps = "all_steps"
    mean = step.objective(learner, batch)
    path = learner.adaptation_path(batch)
    first = clipped_surrogate(learner.policy, path[1], batch.train[1], 0.3)
    torch.testing.assert_close(mean.clipped, (first + last.clipped) / 2)
    assert not torch.allclose(mean.clipped, last.clipped)
    torch.testing.assert_close(mean.inner_kls, last.inner_kls)


def test_the_kl_coefficient_moves_towards_its_target() -> None:
    assert adapt_kl_coefficient(1.0, kl=0.001, target=0.01) == 0.5  # KL well below target: weaker penalty
    assert adapt_kl_coefficient(1.0, kl=0.05, target=0.01) == 2.0  # well above: stronger
    assert adapt_kl_coefficient(1.0, kl=0.012, target=0.01) == 1.0
    for target, expected in ((1e-12, 2e-3), (1e3, 5e-4)):
        learner = make_learner(ProMPConfig(epochs=2, kl_penalty=1e-3, adaptive_kl=True, kl_target=target))
        batch = learner.collect(learner.sampler.sample_tasks(np.random.default_rng(0)), (0, 0))
        out = learner.outer_step.step(learner, batch)
        assert out["promp/inner_kl"] > 0
        assert learner.outer_step.state_dict() == {"kl_coefficients": [pytest.approx(expected)]}


def test_the_kl_penalty_keeps_the_pre_update_policy_close() -> None:
    kls = []
    for penalty in (0.0, 50.0):
        learner = make_learner(ProMPConfig(epochs=5, kl_penalty=penalty))
        batch = learner.collect(learner.sampler.sample_tasks(np.random.default_rng(0)), (0, 0))
        kls.append(learner.outer_step.step(learner, batch)["promp/inner_kl"])
    assert kls[1] < 0.5 * kls[0]


def test_promp_meta_training_learns_to_adapt_on_navigation(tmp_path: Path) -> None:
    overrides = [*PROMP, "train.meta_batch=10", "sampler.episodes=10", "train.iterations=20",
                 "train.checkpoint_every=20"]
    config, kind = load_experiment_config(NAV, overrides)
    run_dir = prepare_run_dir(config, tmp_path / "run")
    assert train(config, kind.build, run_dir) == 0
    records = read_metrics(run_dir)
    post = np.mean([r["returns/post_adapt"] for r in records[-5:]])
    pre = np.mean([r["returns/pre_adapt"] for r in records[-5:]])
    assert post > records[0]["returns/post_adapt"] + 25
    assert post > pre + 5
    assert all(0 <= r["promp/clip_fraction"] <= 1 for r in records)


def test_promp_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"outer\.optimizer: must be one of trpo, sgd, adam, ngd, promp, got 'ppo'"):
        load_experiment_config(NAV, ["outer.optimizer=ppo"])
    with pytest.raises(ConfigError, match=r"promp\.clip_eps"):
        load_experiment_config(NAV, [*PROMP, "promp.clip_eps=0"])
    config, _ = load_experiment_config(NAV, [*PROMP, "outer.lr_mode=hd", "inner.lr_mode=hd"])  # Alpha-ProMP
    assert config.outer.core().optimizer == "adam"
