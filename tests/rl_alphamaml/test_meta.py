"""The meta-optimizer core: adaptation, α and β hypergradients, safety and state."""

from __future__ import annotations

import copy
import itertools
import math

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
    default_hyper_lr,
    expand_params,
    make_rule,
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


def post_adaptation_loss(net: nn.Module, alpha: dict[str, torch.Tensor] | list[dict[str, torch.Tensor]], steps: int,
                         first_order: bool, task: tuple[torch.Tensor, ...]) -> torch.Tensor:
    xs, ys, xq, yq = task
    params = dict(net.named_parameters())
    fast = adapt(params, lambda p: F.mse_loss(call(net, p, {}, xs), ys), alpha, steps, first_order)
    return F.mse_loss(call(net, fast.params, {}, xq), yq)


def per_step(meta: MetaOptimizer) -> list[dict[str, torch.Tensor]]:
    """α of every inner step, as :func:`adapt` takes per-step rates."""
    return [meta.alpha.for_params(j) for j in range(meta.alpha.steps)]


@pytest.mark.parametrize(("steps", "per_step_rates"), [(1, False), (3, False), (3, True)])
@pytest.mark.parametrize("shape", ["scalar", "per_parameter"])
def test_alpha_hypergradient_matches_finite_difference(steps: int, per_step_rates: bool, shape: str) -> None:
    net = make_net()
    task = make_task(1)
    meta = MetaOptimizer(net, InnerConfig(steps=steps, lr=0.3, lr_shape=shape, lr_mode="hd",
                                          lr_per_step=per_step_rates), OuterConfig())
    assert len(meta.alpha.tensors) == (steps if per_step_rates else 1) * (1 if shape == "scalar" else 4)
    loss = post_adaptation_loss(net, per_step(meta), steps, False, task)
    hyper = meta.gradients(loss).alpha
    assert hyper is not None
    g = torch.Generator().manual_seed(7)
    directions = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in meta.alpha.tensors]
    analytic = sum(float((h * d).sum()) for h, d in zip(hyper, directions))

    def loss_at(eps: float) -> float:
        shifted = [(t.detach() + eps * d) for t, d in zip(meta.alpha.tensors, directions)]
        groups = meta.alpha.groups
        alpha = [{n: shifted[j * groups + i] for n, i in meta.alpha.index.items()} for j in range(meta.alpha.steps)]
        with torch.enable_grad():
            return float(post_adaptation_loss(net, alpha, steps, False, task).detach())

    eps = 1e-6
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert abs(analytic) > 1e-4  # the check is not vacuous
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(("steps", "per_step_rates"), [(1, False), (2, False), (2, True)])
def test_first_order_hypergradient_equals_its_definition(steps: int, per_step_rates: bool) -> None:
    net = make_net()
    xs, ys, xq, yq = make_task(2)
    meta = MetaOptimizer(net, InnerConfig(steps=steps, lr=0.2, lr_shape="per_layer", lr_mode="hd", first_order=True,
                                          lr_per_step=per_step_rates), OuterConfig())
    loss = post_adaptation_loss(net, per_step(meta), steps, True, (xs, ys, xq, yq))
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
    # Per-step rates: dL_val/dalpha_j,layer = -<grad L_val(theta'), grad L_train(theta_j)>, step j's term only.
    for name, idx in meta.alpha.index.items():
        if per_step_rates:
            for j, tg in enumerate(train_grads):
                expected = -float((val_grad[name] * tg[name]).sum())
                assert float(grads.alpha[j * meta.alpha.groups + idx]) == pytest.approx(expected, rel=1e-10, abs=1e-14)
        else:
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


def test_a_preconditioned_sgd_step_goes_along_its_directions_and_takes_their_hypergradient() -> None:
    """θ − β·d for the directions d given, and β's hypergradient −⟨g_t, d_{t−1}⟩ (Newton's direction on a quadratic:
    after a half step the loss still falls along it, so β grows); clipping scales them with the gradients."""
    curvature = torch.tensor([1.0, 4.0], dtype=torch.float64)
    x = torch.tensor([1.0, -1.0], dtype=torch.float64)
    opt = OuterOptimizer([x], OuterConfig(optimizer="sgd", lr=0.5, lr_mode="hd", hd_rule="additive", hyper_lr=0.1,
                                          lr_max=10.0))
    opt.step([curvature * x], [x.clone()])  # d = H⁻¹g = x
    torch.testing.assert_close(x, torch.tensor([0.5, -0.5], dtype=torch.float64))
    assert opt.last_hypergrad is None  # no previous direction yet
    opt.step([curvature * x], [x.clone()])
    # h = −⟨g_2, d_1⟩ = −(1·0.5·1 + 4·0.5·1) = −2.5 (the loss still falls along d): β grows by 0.1 · 2.5
    assert opt.last_hypergrad == pytest.approx(-2.5) and opt.beta == pytest.approx(0.75)
    torch.testing.assert_close(x, torch.tensor([0.125, -0.125], dtype=torch.float64))
    clipped = OuterOptimizer([x], OuterConfig(optimizer="sgd", lr=1.0, max_grad_norm=0.1))
    clipped.step([curvature * x], [x.clone() * 10])  # directions scaled by the gradient's clip factor
    norm = float(torch.linalg.vector_norm(curvature * torch.tensor([0.125, -0.125], dtype=torch.float64)))
    torch.testing.assert_close(x, torch.tensor([0.125, -0.125], dtype=torch.float64) * (1 - 10 * 0.1 / norm))
    with pytest.raises(ValueError, match="only for optimizer sgd"):
        OuterOptimizer([x], OuterConfig(optimizer="adam")).step([x], [x])
    with pytest.raises(ValueError, match="one tensor per parameter"):
        OuterOptimizer([x], OuterConfig(optimizer="sgd")).step([x], [x, x])


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


@pytest.mark.parametrize(("rule", "per_step_rates"), [("normalized", False), ("log_adam", False),
                                                      ("log_adam", True), ("log_adam_annealed", False)])
def test_state_dict_round_trip_continues_exactly(rule: str, per_step_rates: bool) -> None:
    def make() -> tuple[nn.Module, MetaOptimizer]:
        net = make_net()
        inner = InnerConfig(steps=2, lr=0.1, lr_shape="per_layer", lr_mode="hd", hd_rule=rule,
                            lr_per_step=per_step_rates)
        return net, MetaOptimizer(net, inner, OuterConfig(optimizer="adam", lr=1e-2, lr_mode="hd", hd_rule=rule))

    def iterate(net: nn.Module, meta: MetaOptimizer, seed: int) -> float:
        loss = post_adaptation_loss(net, per_step(meta), 2, False, make_task(seed))
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
    if rule.startswith("log_adam"):  # both running moments are kept (and their number of updates, for the bias
        # correction)
        assert meta.state_dict()["alpha"]["rule"]["first_moment"] and meta.state_dict()["outer"]["rule"]["steps"] == 5
    if per_step_rates:  # every step's α has followed its own hypergradient
        assert len(set(meta.alpha.step_means())) == 2


@pytest.mark.parametrize("rule", ["additive", "normalized", "log_adam", "log_adam_annealed"])
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


# ------------------------------------------------------------------------------------------------
# The log_adam rule, per-step rates, taking a step back
# ------------------------------------------------------------------------------------------------


def log_steps(rule: str, hypergrads: list[float], hyper_lr: float = 0.2) -> list[float]:
    """|Δ log r| of each update of a rate driven by ``hypergrads``."""
    rule_ = make_rule(rule, hyper_lr, 1e-12, 1e12)  # type: ignore[arg-type]
    rate = torch.tensor(1.0, dtype=torch.float64)
    steps = []
    for h in hypergrads:
        before = float(rate.log())
        rule_.update([rate], [torch.tensor(h, dtype=torch.float64)])
        steps.append(abs(float(rate.log()) - before))
    return steps


def test_log_adam_steps_are_near_eta_while_the_sign_holds_and_small_when_it_alternates() -> None:
    consistent = log_steps("log_adam", [1.0] * 20)
    assert consistent == pytest.approx([0.2] * 20, rel=1e-9)  # m̂/√v̂ = 1 for a constant hypergradient
    assert log_steps("log_adam", [3e-7] * 20) == pytest.approx(consistent, rel=1e-9)  # scale-free
    # A hypergradient that shrinks as the rate nears its good value keeps full steps while its sign holds.
    assert min(log_steps("log_adam", [0.8**k for k in range(20)])) > 0.1
    alternating = log_steps("log_adam", [(-1.0) ** k for k in range(40)])
    assert max(alternating[20:]) < 0.07 * 0.2  # the first moment averages the sign out: about 0.05 η
    # The normalized rule moves at its full step whatever the sign does: its η must stay small.
    assert min(log_steps("normalized", [(-1.0) ** k for k in range(40)], hyper_lr=0.02)[10:]) > 0.9 * 0.02
    noise = torch.randn(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64).tolist()
    assert sum(log_steps("log_adam", noise)[20:]) / 180 < 0.5 * 0.2


def test_the_annealed_rule_moves_like_log_adam_first_then_with_a_hyper_rate_that_decays() -> None:
    """η_t = η/√(1 + (t − 1)/20): the first update's step is log_adam's, the 21st's η/√2, the 61st's η/2; a rate
    still crosses a decade within the first 20 consistent updates; a checkpoint keeps the decay's clock."""
    annealed, plain = log_steps("log_adam_annealed", [1.0] * 61), log_steps("log_adam", [1.0] * 61)
    assert annealed[0] == pytest.approx(plain[0], rel=1e-9)
    assert annealed[20] == pytest.approx(0.2 / 2**0.5, rel=1e-9) and annealed[60] == pytest.approx(0.1, rel=1e-9)
    assert all(a > b for a, b in itertools.pairwise(annealed))
    assert sum(annealed[:15]) > math.log(10)  # a decade in 15 consistent updates
    rule = make_rule("log_adam_annealed", None, 1e-6, 10.0)
    rate = torch.tensor(1.0, dtype=torch.float64)
    for _ in range(30):
        rule.update([rate], [torch.tensor(1.0, dtype=torch.float64)])
    resumed = make_rule("log_adam_annealed", None, 1e-6, 10.0)
    resumed.load_state_dict(rule.state_dict())
    assert resumed.current_hyper_lr() == rule.current_hyper_lr() < 0.2  # type: ignore[attr-defined]


def test_log_adam_moves_a_rate_a_decade_in_a_dozen_consistent_updates() -> None:
    rule = make_rule("log_adam", None, 1e-6, 10.0)
    assert rule.hyper_lr == 0.2 == default_hyper_lr("log_adam", "adam")
    alpha = torch.tensor([0.01, 1.0], dtype=torch.float64)
    for _ in range(12):  # α₁ too small (∂L/∂α < 0), α₂ too large (∂L/∂α > 0)
        rule.update([alpha], [torch.tensor([-5.0, 2e-3], dtype=torch.float64)])
    assert float(alpha[0]) > 0.1 and float(alpha[1]) < 0.1


def test_per_step_rates_apply_step_by_step_and_the_last_past_the_trained_steps() -> None:
    net = make_net()
    xs, ys, _, _ = make_task(4)
    meta = MetaOptimizer(net, InnerConfig(steps=2, lr=0.1, lr_mode="hd", lr_per_step=True), OuterConfig())
    with torch.no_grad():
        meta.alpha.tensors[1].fill_(0.3)
    assert meta.alpha.step_means() == pytest.approx([0.1, 0.3]) and meta.alpha.mean() == pytest.approx(0.2)

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(call(net, p, {}, xs), ys)

    def by_hand(rates: list[float]) -> dict[str, torch.Tensor]:
        alphas = [{n: torch.tensor(r, dtype=torch.float64) for n in meta.params} for r in rates]
        return adapt(dict(net.named_parameters()), loss, alphas, len(rates)).params

    for steps, start, rates in [(2, 0, [0.1, 0.3]), (4, 0, [0.1, 0.3, 0.3, 0.3]), (1, 0, [0.1]), (1, 1, [0.3]),
                                (1, 5, [0.3]), (2, 1, [0.3, 0.3])]:
        fast = meta.adapt(loss, steps=steps, start=start).params
        for n, p in by_hand(rates).items():
            torch.testing.assert_close(fast[n], p, rtol=1e-12, atol=0)
    scalars = meta.step(loss(meta.adapt(loss).params)).scalars()
    assert scalars["meta/alpha_1"] != scalars["meta/alpha_2"]
    assert scalars["meta/alpha"] == pytest.approx((scalars["meta/alpha_1"] + scalars["meta/alpha_2"]) / 2)
    assert "meta/alpha_1" not in MetaOptimizer(make_net(), InnerConfig(steps=2), OuterConfig()).step(
        torch.zeros((), dtype=torch.float64, requires_grad=True)).scalars()


@pytest.mark.parametrize(("mode", "rule"), [("hd", "normalized"), ("hd", "log_adam"), ("learned", "normalized")])
def test_a_state_without_per_step_rates_loads_into_them(mode: str, rule: str) -> None:
    """A checkpoint of one α (a run without ``lr_per_step``, or written before it existed) gives every step that α
    and its rule's moments; Meta-SGD's per-step α take its optimizer moments too."""
    def make(per_step_rates: bool) -> MetaOptimizer:
        inner = InnerConfig(steps=3, lr=0.1, lr_shape="per_layer", lr_mode=mode, hd_rule=rule,
                            lr_per_step=per_step_rates)
        return MetaOptimizer(make_net(), inner, OuterConfig(optimizer="adam", lr=1e-2))

    single = make(False)
    for seed in range(3):
        single.step(post_adaptation_loss(single.module, single.alpha.for_params(), 3, False, make_task(seed)))
    state = copy.deepcopy(single.state_dict())
    assert len(state["alpha"]["tensors"]) == 4  # the layout of 0.1.0's checkpoints: one tensor per layer
    widened = make(True)
    widened.module.load_state_dict(single.module.state_dict())
    widened.load_state_dict(state)
    for j in range(3):
        for a, b in zip(widened.alpha.step_tensors(j), single.alpha.tensors):
            assert torch.equal(a, b)
    if mode == "hd":
        moments = widened.alpha.rule.state_dict()["second_moment"]  # type: ignore[union-attr]
        saved = state["alpha"]["rule"]["second_moment"]
        assert len(moments) == 12
        assert all(torch.equal(moments[4 * j + i], v) for j in range(3) for i, v in enumerate(saved))
    else:
        assert len(widened.outer.m) == 4 + 12 and torch.equal(widened.outer.m[4 + 8 + 1], single.outer.m[4 + 1])
    widened.step(post_adaptation_loss(widened.module, per_step(widened), 3, False, make_task(5)))  # and it trains on
    with pytest.raises(ValueError, match="alpha's layout"):
        make(False).load_state_dict(widened.state_dict())


def test_an_outer_state_of_another_size_is_refused() -> None:
    opt = OuterOptimizer([torch.zeros(2), torch.zeros(3)], OuterConfig(optimizer="adam"))
    opt.step([torch.ones(2), torch.ones(3)])
    state = opt.state_dict()
    with pytest.raises(ValueError, match="holds 2 tensors of m"):
        OuterOptimizer([torch.zeros(2), torch.zeros(3), torch.zeros(1)], OuterConfig(optimizer="adam")).load_state_dict(
            state)


def test_retract_shrinks_the_last_step_and_beta_with_it() -> None:
    x = torch.tensor([1.0, -2.0], dtype=torch.float64)
    meta_like = OuterOptimizer([x], OuterConfig(optimizer="sgd", lr=0.1))
    with pytest.raises(RuntimeError, match="no outer step"):
        meta_like.scale_last_step(0.5)
    meta_like.step([torch.tensor([1.0, 1.0], dtype=torch.float64)])
    torch.testing.assert_close(x, torch.tensor([0.9, -2.1], dtype=torch.float64))
    meta_like.scale_last_step(0.5)
    torch.testing.assert_close(x, torch.tensor([0.95, -2.05], dtype=torch.float64))
    meta_like.scale_last_step(0.5)  # compounds: a quarter of the step
    torch.testing.assert_close(x, torch.tensor([0.975, -2.025], dtype=torch.float64))
    meta_like.scale_last_step(0.0)  # taken back
    torch.testing.assert_close(x, torch.tensor([1.0, -2.0], dtype=torch.float64))

    net = make_net()
    meta = MetaOptimizer(net, InnerConfig(lr=0.1, lr_mode="learned"),
                         OuterConfig(optimizer="adam", lr=1e-2, lr_mode="hd", lr_min=1e-3))
    before = [p.detach().clone() for p in meta.outer.params]
    meta.step(post_adaptation_loss(net, meta.alpha.for_params(), 1, False, make_task(0)))
    after = [p.detach().clone() for p in meta.outer.params]
    beta = meta.beta
    meta.retract(0.25)  # θ and the learned α a quarter of the way, β a quarter
    for p, b, a in zip(meta.outer.params, before, after):
        torch.testing.assert_close(p.detach(), b + 0.25 * (a - b))
    assert meta.beta == pytest.approx(0.25 * beta)
    assert meta.outer.prev_direction is not None
    meta.retract(0.0, beta_factor=1.0)
    for p, b in zip(meta.outer.params, before):
        torch.testing.assert_close(p.detach(), b)
    assert meta.beta == pytest.approx(0.25 * beta)
    assert meta.outer.prev_direction is None  # a step taken back leaves no direction for β's next hypergradient
    meta.retract(1.0, beta_factor=1e-6)  # β stays within its bounds
    assert meta.beta == 1e-3


def test_rate_config_errors() -> None:
    with pytest.raises(ValueError, match="lr_per_step: one alpha per inner step needs steps >= 1"):
        InnerConfig(steps=0, lr_per_step=True).validate()
    with pytest.raises(ValueError, match="the log_adam rule adapts log"):
        InnerConfig(lr_mode="hd", hd_rule="log_adam", lr_min=0.0).validate()
    with pytest.raises(ValueError, match="the log_adam rule adapts log"):
        OuterConfig(lr_mode="hd", hd_rule="log_adam", lr_min=0.0).validate()
    InnerConfig(lr_mode="hd", hd_rule="additive", lr_min=0.0).validate()
