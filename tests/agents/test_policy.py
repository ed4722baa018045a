"""GaussianMLPPolicy: functional, batched evaluation must agree with a plain per-task loop."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence
from torch.func import functional_call

from agents.policy import (
    GaussianMLPPolicy,
    expand_params,
    is_batched,
    num_tasks,
    stack_params,
    task_params,
    unstack_params,
)

T, B, OBS, ACT = 4, 6, 5, 3


def make_policy(activation: str = "tanh", dtype: torch.dtype = torch.float64) -> GaussianMLPPolicy:
    torch.manual_seed(0)
    return GaussianMLPPolicy(OBS, ACT, hidden_sizes=(16, 12), activation=activation, init_log_std=-0.3).to(dtype)


def per_task_params(policy: GaussianMLPPolicy, seed: int = 1) -> list[dict[str, torch.Tensor]]:
    """Distinct parameters per task (θ plus task-specific noise), as fast weights would be."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(T):
        out.append(
            {
                k: v.detach() + 0.3 * torch.randn(v.shape, generator=g, dtype=v.dtype)
                for k, v in policy.named_parameters()
            }
        )
    return out


def reference_dist(p: dict[str, torch.Tensor], obs: torch.Tensor, activation: str) -> Normal:
    """Straightforward single-task MLP written independently of the code under test."""
    act = torch.tanh if activation == "tanh" else torch.relu
    h = obs
    n_hidden = sum(1 for k in p if k.startswith("hidden.") and k.endswith(".weight"))
    for i in range(n_hidden):
        h = act(h @ p[f"hidden.{i}.weight"].T + p[f"hidden.{i}.bias"])
    mean = h @ p["mean.weight"].T + p["mean.bias"]
    return Normal(mean, torch.exp(p["log_std"]).expand_as(mean))


def test_parameter_names_and_defaults() -> None:
    policy = GaussianMLPPolicy(7, 2)
    names = {n for n, _ in policy.named_parameters()}
    assert names == {
        "hidden.0.weight",
        "hidden.0.bias",
        "hidden.1.weight",
        "hidden.1.bias",
        "mean.weight",
        "mean.bias",
        "log_std",
    }
    assert policy.hidden[0].weight.shape == (100, 7)
    assert policy.hidden[1].weight.shape == (100, 100)
    assert torch.equal(policy.log_std.detach(), torch.zeros(2))  # σ = 1
    with pytest.raises(ValueError, match="activation"):
        GaussianMLPPolicy(3, 1, activation="sigmoid")


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("batch_shape", [(B,), (3, B)])
def test_batched_log_prob_entropy_kl_match_per_task_loop(activation: str, batch_shape: tuple[int, ...]) -> None:
    policy = make_policy(activation)
    plist = per_task_params(policy)
    stacked = stack_params(plist)
    assert is_batched(stacked) and num_tasks(stacked) == T
    g = torch.Generator().manual_seed(3)
    obs = torch.randn((T, *batch_shape, OBS), generator=g, dtype=torch.float64)
    actions = torch.randn((T, *batch_shape, ACT), generator=g, dtype=torch.float64)

    logp = policy.log_prob(stacked, obs, actions)
    ent = policy.entropy(stacked, obs)
    kl = policy.kl(stacked, expand_params(policy.params(), T), obs)
    assert logp.shape == (T, *batch_shape)
    assert ent.shape == (T, *batch_shape)
    assert kl.shape == (T,)

    theta = {k: v.detach() for k, v in policy.named_parameters()}
    for t in range(T):
        ref = reference_dist(plist[t], obs[t], activation)
        ref_theta = reference_dist(theta, obs[t], activation)
        torch.testing.assert_close(logp[t], ref.log_prob(actions[t]).sum(-1))
        torch.testing.assert_close(ent[t], ref.entropy().sum(-1))
        torch.testing.assert_close(kl[t], kl_divergence(ref, ref_theta).sum(-1).mean())
        # the unbatched call on one task's params agrees too
        torch.testing.assert_close(policy.log_prob(plist[t], obs[t], actions[t]), logp[t])
        torch.testing.assert_close(policy.kl(plist[t], theta, obs[t]), kl[t])


def test_unbatched_params_broadcast_over_task_dim() -> None:
    policy = make_policy()
    obs = torch.randn(T, B, OBS, dtype=torch.float64)
    mean_u, log_std_u = policy(obs)  # one θ for all tasks
    mean_b, log_std_b = policy(obs, expand_params(policy.params(), T))
    torch.testing.assert_close(mean_u, mean_b)
    torch.testing.assert_close(log_std_u, log_std_b)
    assert log_std_b.shape == mean_b.shape == (T, B, ACT)


def test_functional_call_and_module_forward_agree() -> None:
    policy = make_policy()
    p = per_task_params(policy)[0]
    obs = torch.randn(B, OBS, dtype=torch.float64)
    m1, s1 = functional_call(policy, p, (obs,))
    m2, s2 = policy(obs, p)
    torch.testing.assert_close(m1, m2)
    torch.testing.assert_close(s1, s2)


def test_sample_reproducible_and_matches_per_task_loop() -> None:
    policy = make_policy()
    plist = per_task_params(policy)
    stacked = stack_params(plist)
    obs = torch.randn(T, B, OBS, dtype=torch.float64)

    a1 = policy.sample(stacked, obs, torch.Generator().manual_seed(42))
    a2 = policy.sample(stacked, obs, torch.Generator().manual_seed(42))
    a3 = policy.sample(stacked, obs, torch.Generator().manual_seed(43))
    assert a1.shape == (T, B, ACT)
    assert not a1.requires_grad
    assert torch.equal(a1, a2)
    assert not torch.allclose(a1, a3)

    eps = torch.randn((T, B, ACT), generator=torch.Generator().manual_seed(42), dtype=torch.float64)
    for t in range(T):
        ref = reference_dist(plist[t], obs[t], "tanh")
        torch.testing.assert_close(a1[t], ref.mean + ref.stddev * eps[t])
    # unbatched sample with the same seed draws the same noise for the same shape
    a_u = policy.sample(plist[0], obs[0], torch.Generator().manual_seed(42))
    ref0 = reference_dist(plist[0], obs[0], "tanh")
    eps0 = torch.randn((B, ACT), generator=torch.Generator().manual_seed(42), dtype=torch.float64)
    torch.testing.assert_close(a_u, ref0.mean + ref0.stddev * eps0)


def test_sample_statistics() -> None:
    policy = make_policy()
    obs = torch.randn(1, OBS, dtype=torch.float64).expand(20000, OBS)
    a = policy.sample(None, obs, torch.Generator().manual_seed(0))
    mean, log_std = policy(obs[:1])
    torch.testing.assert_close(a.mean(0), mean[0], atol=0.03, rtol=0)
    torch.testing.assert_close(a.std(0), log_std[0].exp(), atol=0.03, rtol=0)


def test_expand_params_keeps_autograd_and_module_is_not_mutated() -> None:
    policy = make_policy()
    before = {k: v.detach().clone() for k, v in policy.named_parameters()}
    theta = policy.params()
    obs = torch.randn(T, B, OBS, dtype=torch.float64)
    actions = torch.randn(T, B, ACT, dtype=torch.float64)
    weights = torch.arange(1, T + 1, dtype=torch.float64)

    # one inner step per task on the expanded dict (functional fast weights)
    fast = expand_params(theta, T)
    inner = policy.log_prob(fast, obs, actions).mean(-1)
    grads = torch.autograd.grad(inner.sum(), list(fast.values()), create_graph=True)
    fast = {k: v + 0.1 * g for (k, v), g in zip(fast.items(), grads)}
    outer = (policy.log_prob(fast, obs, actions).mean(-1) * weights).sum()
    g_batched = torch.autograd.grad(outer, list(theta.values()))

    # the same computation one task at a time on θ directly
    total = torch.zeros((), dtype=torch.float64)
    for t in range(T):
        inner_t = policy.log_prob(theta, obs[t], actions[t]).mean()
        g_t = torch.autograd.grad(inner_t, list(theta.values()), create_graph=True)
        fast_t = {k: v + 0.1 * g for (k, v), g in zip(theta.items(), g_t)}
        total = total + weights[t] * policy.log_prob(fast_t, obs[t], actions[t]).mean()
    g_loop = torch.autograd.grad(total, list(theta.values()))

    for a, b in zip(g_batched, g_loop):
        torch.testing.assert_close(a, b)
    for k, v in policy.named_parameters():
        assert torch.equal(v.detach(), before[k]), k


def test_stack_unstack_roundtrip() -> None:
    policy = make_policy()
    plist = per_task_params(policy)
    back = unstack_params(stack_params(plist))
    for p, q in zip(plist, back):
        assert p.keys() == q.keys()
        for k in p:
            assert torch.equal(p[k], q[k])
    assert torch.equal(task_params(stack_params(plist), 2)["log_std"], plist[2]["log_std"])
    with pytest.raises(ValueError):
        expand_params(policy.params(), 0)
    with pytest.raises(ValueError, match="obs must be"):
        policy(torch.randn(T + 1, B, OBS, dtype=torch.float64), stack_params(plist))


def test_kl_mask_ignores_ended_steps() -> None:
    policy = make_policy()
    plist = per_task_params(policy)
    old, new = stack_params(plist), expand_params(policy.params(), T)
    H = 7
    obs = torch.randn(T, H, B, OBS, dtype=torch.float64)
    lengths = torch.tensor([[7, 3, 1, 5, 7, 2], [1, 1, 1, 1, 1, 1], [7] * 6, [4, 6, 2, 7, 3, 5]])
    mask = (torch.arange(H).view(1, H, 1) < lengths.view(T, 1, B)).double()
    kl = policy.kl(old, new, obs, mask)
    obs_garbage = torch.where(mask.bool().unsqueeze(-1), obs, torch.full_like(obs, float("nan")))
    torch.testing.assert_close(policy.kl(old, new, obs_garbage, mask), kl)
    theta = {k: v.detach() for k, v in policy.named_parameters()}
    for t in range(T):
        vals = []
        for e in range(B):
            for s in range(int(lengths[t, e])):
                p = reference_dist(plist[t], obs[t, s, e], "tanh")
                q = reference_dist(theta, obs[t, s, e], "tanh")
                vals.append(kl_divergence(p, q).sum())
        torch.testing.assert_close(kl[t], torch.stack(vals).mean())


def test_kl_zero_at_equal_params_with_zero_gradient() -> None:
    policy = make_policy()
    obs = torch.randn(B, OBS, dtype=torch.float64)
    old = {k: v.detach() for k, v in policy.named_parameters()}
    kl = policy.kl(old, policy.params(), obs)
    assert abs(kl.item()) < 1e-12
    for g in torch.autograd.grad(kl, list(policy.parameters())):
        assert g.abs().max().item() < 1e-12


def test_min_log_std_clamp() -> None:
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(4,), init_log_std=-20.0, min_log_std=math.log(1e-3))
    _, log_std = policy(torch.zeros(3, 2))
    torch.testing.assert_close(log_std, torch.full((3, 2), math.log(1e-3)))
    free = GaussianMLPPolicy(2, 2, hidden_sizes=(4,), init_log_std=-20.0, min_log_std=None)
    _, log_std = free(torch.zeros(3, 2))
    torch.testing.assert_close(log_std, torch.full((3, 2), -20.0))
