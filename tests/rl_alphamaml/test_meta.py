"""The meta-optimizer core: adaptation, α and β hypergradients, safety and state."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from rl_alphamaml.errors import NonFiniteError
from rl_alphamaml.meta import (
    InnerConfig,
    MetaOptimizer,
    OuterConfig,
    OuterOptimizer,
    adapt,
    call,
    call_batched,
    expand_params,
    module_buffers,
)


def make_net(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)


def make_task(seed: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    xs, xq = torch.randn(10, 3, generator=g, dtype=dtype), torch.randn(12, 3, generator=g, dtype=dtype)
    w = torch.randn(3, 1, generator=g, dtype=dtype)
    return xs, torch.sin(xs @ w), xq, torch.sin(xq @ w)


def post_adaptation_loss(net: nn.Module, alpha: dict[str, torch.Tensor], steps: int, first_order: bool,
                         task: tuple[torch.Tensor, ...]) -> torch.Tensor:
    xs, ys, xq, yq = task
    params = dict(net.named_parameters())
    fast = adapt(params, lambda p: F.mse_loss(call(net, p, {}, xs), ys), alpha, steps, first_order)
    return F.mse_loss(call(net, fast.params, {}, xq), yq)


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("shape", ["scalar", "per_parameter"])
def test_alpha_hypergradient_matches_finite_difference(steps: int, shape: str) -> None:
    net = make_net()
    task = make_task(1)
    meta = MetaOptimizer(net, InnerConfig(steps=steps, lr=0.3, lr_shape=shape, lr_mode="hd"), OuterConfig())
    loss = post_adaptation_loss(net, meta.alpha.for_params(), steps, False, task)
    hyper = meta.gradients(loss).alpha
    assert hyper is not None
    g = torch.Generator().manual_seed(7)
    directions = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in meta.alpha.tensors]
    analytic = sum(float((h * d).sum()) for h, d in zip(hyper, directions))

    def loss_at(eps: float) -> float:
        shifted = [(t.detach() + eps * d) for t, d in zip(meta.alpha.tensors, directions)]
        alpha = {n: shifted[i] for n, i in meta.alpha.index.items()}
        with torch.enable_grad():
            return float(post_adaptation_loss(net, alpha, steps, False, task).detach())

    eps = 1e-6
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert abs(analytic) > 1e-4  # the check is not vacuous
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("steps", [1, 2])
def test_first_order_hypergradient_equals_its_definition(steps: int) -> None:
    net = make_net()
    xs, ys, xq, yq = make_task(2)
    meta = MetaOptimizer(
        net, InnerConfig(steps=steps, lr=0.2, lr_shape="per_layer", lr_mode="hd", first_order=True), OuterConfig()
    )
    loss = post_adaptation_loss(net, meta.alpha.for_params(), steps, True, (xs, ys, xq, yq))
    grads = meta.gradients(loss)
    assert grads.alpha is not None

    # The definition: dL_val/dalpha_layer = -sum_j <grad L_val(theta'), grad L_train(theta_j)> over that layer.
    theta = {n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters()}
    train_grads = []
    current = theta
    for _ in range(steps):
        g = torch.autograd.grad(F.mse_loss(call(net, current, {}, xs), ys), list(current.values()))
        train_grads.append(dict(zip(current, g)))
        current = {n: (p - 0.2 * gi).detach().requires_grad_(True) for (n, p), gi in zip(current.items(), g)}
    val_grad = dict(zip(current, torch.autograd.grad(F.mse_loss(call(net, current, {}, xq), yq),
                                                      list(current.values()))))
    for name, idx in meta.alpha.index.items():
        expected = -sum(float((val_grad[name] * tg[name]).sum()) for tg in train_grads)
        assert float(grads.alpha[idx]) == pytest.approx(expected, rel=1e-10, abs=1e-14)
    # FOMAML: the meta-gradient for theta is the validation gradient at theta'.
    for name, g in grads.theta.items():
        torch.testing.assert_close(g, val_grad[name], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("rule,hyper_lr", [("additive", 1e-2), ("normalized", 0.05)])
def test_sgd_hd_raises_a_too_small_beta_and_lowers_a_too_large_one(rule: str, hyper_lr: float) -> None:
    curvature = torch.tensor([1.0, 2.0], dtype=torch.float64)  # f = 1/2 sum c x^2; stable for beta < 1

    def run(beta0: float) -> float:
        x = torch.tensor([1.0, -1.0], dtype=torch.float64)
        opt = OuterOptimizer([x], OuterConfig(optimizer="sgd", lr=beta0, lr_mode="hd", hd_rule=rule,
                                              hyper_lr=hyper_lr, lr_min=1e-6, lr_max=10.0))
        for _ in range(20):
            opt.step([curvature * x])
        return opt.beta

    assert run(0.01) > 0.01 * 1.1  # too small: consecutive gradients agree, beta grows
    assert run(0.95) < 0.95 * 0.9  # too large: gradients flip sign (oscillation), beta shrinks


def test_adam_hd_adapts_beta_and_descends() -> None:
    x = torch.tensor([3.0, -2.0], dtype=torch.float64)
    opt = OuterOptimizer([x], OuterConfig(optimizer="adam", lr=1e-3, lr_mode="hd", hd_rule="normalized"))
    for _ in range(50):
        opt.step([x.clone()])
    assert opt.beta > 1e-3 * 1.5  # a consistent descent direction raises beta
    assert 3.0 - float(x[0]) > 1.3 * 50 * 1e-3  # farther than fixed-beta Adam (about beta per step) gets


def test_meta_sgd_per_parameter_alpha_receives_gradients() -> None:
    net = make_net()
    meta = MetaOptimizer(net, InnerConfig(lr=0.1, lr_shape="per_parameter", lr_mode="learned"),
                         OuterConfig(optimizer="adam", lr=1e-2))
    before = [t.detach().clone() for t in meta.alpha.tensors]
    loss = post_adaptation_loss(net, meta.alpha.for_params(), 1, False, make_task(3))
    grads = meta.gradients(loss)
    assert grads.alpha is not None
    assert all(float(h.abs().sum()) > 0 for h in grads.alpha)
    meta.apply(grads)
    assert all(not torch.equal(a, b) for a, b in zip(before, meta.alpha.tensors))


def test_adaptation_never_mutates_the_module_and_handles_buffers() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).double()
    state = copy.deepcopy(net.state_dict())
    buffers = module_buffers(net)
    x, y = torch.randn(16, 4, dtype=torch.float64), torch.randint(0, 2, (16,))
    fast = adapt(dict(net.named_parameters()),
                 lambda p: F.cross_entropy(call(net, p, buffers, x), y),
                 {n: torch.tensor(0.5) for n, _ in net.named_parameters()}, steps=3)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert not torch.equal(buffers["1.running_mean"], state["1.running_mean"])  # the copies were used
    assert fast.inner_losses[-1] < fast.inner_losses[0]


def test_batched_adaptation_equals_the_per_task_loop() -> None:
    net = make_net()
    tasks = [make_task(s) for s in range(4)]
    alpha = {n: torch.tensor(0.3, dtype=torch.float64) for n, _ in net.named_parameters()}
    xs = torch.stack([t[0] for t in tasks])
    ys = torch.stack([t[1] for t in tasks])
    batched = adapt(expand_params(dict(net.named_parameters()), 4),
                    lambda p: F.mse_loss(call_batched(net, p, {}, xs), ys, reduction="sum") / ys[0].numel(),
                    alpha, steps=2)
    for i, (x, y, _, _) in enumerate(tasks):
        single = adapt(dict(net.named_parameters()), lambda p, x=x, y=y: F.mse_loss(call(net, p, {}, x), y),
                       alpha, steps=2)
        for n in single.params:
            torch.testing.assert_close(batched.params[n][i], single.params[n], rtol=1e-10, atol=1e-12)


def test_state_dict_round_trip_continues_exactly() -> None:
    def make() -> tuple[nn.Module, MetaOptimizer]:
        net = make_net()
        inner = InnerConfig(steps=2, lr=0.1, lr_shape="per_layer", lr_mode="hd")
        return net, MetaOptimizer(net, inner, OuterConfig(optimizer="adam", lr=1e-2, lr_mode="hd"))

    def iterate(net: nn.Module, meta: MetaOptimizer, seed: int) -> float:
        loss = post_adaptation_loss(net, meta.alpha.for_params(), 2, False, make_task(seed))
        return meta.step(loss).loss

    net, meta = make()
    for s in range(3):
        iterate(net, meta, s)
    saved = (copy.deepcopy(net.state_dict()), copy.deepcopy(meta.state_dict()))
    expected = [iterate(net, meta, s) for s in range(3, 6)]
    net2, meta2 = make()
    net2.load_state_dict(saved[0])
    meta2.load_state_dict(saved[1])
    assert [iterate(net2, meta2, s) for s in range(3, 6)] == expected
    assert meta2.beta == meta.beta and meta2.alpha.mean() == meta.alpha.mean()


@pytest.mark.parametrize("rule", ["additive", "normalized"])
def test_rates_stay_within_bounds_under_adversarial_gradients(rule: str) -> None:
    net = make_net()
    meta = MetaOptimizer(
        net,
        InnerConfig(lr=0.1, lr_mode="hd", lr_shape="per_parameter", hd_rule=rule, hyper_lr=10.0,
                    lr_min=1e-3, lr_max=0.5),
        OuterConfig(optimizer="sgd", lr=0.01, lr_mode="hd", hd_rule=rule, hyper_lr=10.0, lr_min=1e-4, lr_max=0.05),
    )
    params = meta.params
    for i in range(40):
        scale = 1e6 if i % 3 else 1e-6
        sign = 1.0 if (i // 2) % 2 else -1.0
        theta = {n: sign * scale * torch.ones_like(p) for n, p in params.items()}
        alpha = [(-sign) * scale * torch.ones_like(t) for t in meta.alpha.tensors]
        from rl_alphamaml.meta import MetaGradients

        meta.apply(MetaGradients(1.0, theta, alpha))
        values = meta.alpha.values()
        assert float(values.min()) >= 1e-3 and float(values.max()) <= 0.5
        assert 1e-4 <= meta.beta <= 0.05


def test_a_nan_gradient_changes_nothing_and_repeated_ones_end_the_run() -> None:
    net = make_net()
    meta = MetaOptimizer(net, InnerConfig(lr=0.1, lr_mode="hd"), OuterConfig(lr_mode="hd"), max_nonfinite=3)
    meta.step(post_adaptation_loss(net, meta.alpha.for_params(), 1, False, make_task(0)))
    theta = copy.deepcopy(net.state_dict())
    state = copy.deepcopy(meta.state_dict())

    def poisoned() -> torch.Tensor:
        loss = post_adaptation_loss(net, meta.alpha.for_params(), 1, False, make_task(1))
        return loss * torch.tensor(float("nan"), dtype=torch.float64)

    info = meta.step(poisoned())
    assert info.skipped
    for k, v in net.state_dict().items():
        assert torch.equal(v, theta[k])
    assert meta.alpha.mean() == pytest.approx(float(state["alpha"]["tensors"][0]))
    assert meta.beta == state["outer"]["beta"]
    for a, b in zip(meta.state_dict()["outer"]["m"], state["outer"]["m"]):
        assert torch.equal(a, b)
    meta.step(poisoned())
    with pytest.raises(NonFiniteError, match="3 meta-steps in a row"):
        meta.step(poisoned())
    for k, v in net.state_dict().items():
        assert torch.equal(v, theta[k])
