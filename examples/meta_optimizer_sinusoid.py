"""The meta-optimizer core on your own PyTorch model: sinusoid regression with α and β by hypergradient.

:class:`rl_alphamaml.meta.MetaOptimizer` is the core every learner of the toolkit runs on; here it meta-trains
a plain ``nn.Module`` of your own with your own data and loss. The problem is MAML's sinusoid regression
(Finn, Abbeel & Levine 2017, §5.1): a task is ``y = A·sin(x − φ)``, A ~ U[0.1, 5], φ ~ U[0, π], with K = 10
support points to adapt on and query points to be scored on. The inner rate α and the outer Adam rate β start
at MAML's values and follow their hypergradients (Alpha MAML: Behl, Baydin & Torr 2019; Adam-HD: Baydin et
al. 2018) — ``lr_mode="hd"`` on both, nothing else to tune.

The meta-batch's tasks are adapted at once: :func:`rl_alphamaml.meta.expand_params` gives θ a leading task
dimension, :func:`rl_alphamaml.meta.call_batched` evaluates the model for every task's fast weights with
``vmap``, and the inner loss *sums* the tasks' losses, so each task's inner gradient is its own. (One task at a
time works too: ``meta.adapt(loss)`` on unbatched parameters with :func:`rl_alphamaml.meta.call`.)

Usage::

    python examples/meta_optimizer_sinusoid.py          # 2000 meta-iterations, about a minute on one core
    python examples/meta_optimizer_sinusoid.py --tiny   # 20 iterations: seconds
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from rl_alphamaml.meta import InnerConfig, MetaOptimizer, OuterConfig, Params, call_batched, expand_params


class Regressor(nn.Module):
    """Your model: any ``nn.Module`` whose parameters are the meta-parameters θ (here MAML's 1-40-40-1 MLP)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def sample_tasks(n: int, points: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``n`` sinusoids: support inputs and targets ``(n, 10, 1)``, query inputs and targets ``(n, points, 1)``."""
    amplitude = 0.1 + 4.9 * torch.rand(n, 1, 1, generator=generator)
    phase = math.pi * torch.rand(n, 1, 1, generator=generator)
    xs = -5 + 10 * torch.rand(n, 10, 1, generator=generator)
    xq = -5 + 10 * torch.rand(n, points, 1, generator=generator)
    return xs, amplitude * torch.sin(xs - phase), xq, amplitude * torch.sin(xq - phase)


def task_mse(model: nn.Module, params: Params, x: Tensor, y: Tensor) -> Tensor:
    """Each task's mean squared error ``(n,)`` under its own fast weights (``params`` with a task dimension)."""
    return (call_batched(model, params, {}, x) - y).pow(2).mean(dim=(1, 2))


def support_loss(model: nn.Module, xs: Tensor, ys: Tensor) -> Callable[[Params], Tensor]:
    """The inner loss of a batch of tasks: the *sum* of the tasks' support MSEs, so each task's gradient is its own."""
    return lambda params: task_mse(model, params, xs, ys).sum()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds' budget (what the tests run)")
    args = parser.parse_args(argv)
    iterations, meta_batch = (20, 5) if args.tiny else (2000, 25)

    torch.manual_seed(0)
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    model = Regressor()
    meta = MetaOptimizer(model,
                         InnerConfig(steps=1, lr=0.01, lr_mode="hd"),                  # α: MAML's 0.01, adapted
                         OuterConfig(optimizer="adam", lr=1e-3, lr_mode="hd"))          # β: Adam's 1e-3, adapted
    generator = torch.Generator().manual_seed(1)
    held_out = sample_tasks(100, 100, torch.Generator().manual_seed(12345))  # never trained on

    def heldout_mse(steps: int) -> float:
        """Query MSE on the held-out tasks after ``steps`` first-order inner steps from θ with the current α."""
        xs, ys, xq, yq = held_out
        fast = meta.adapt(support_loss(model, xs, ys), expand_params(meta.params, len(xs)), steps=steps,
                          first_order=True)
        with torch.no_grad():
            return float(task_mse(model, fast.params, xq, yq).mean())

    for i in range(1, iterations + 1):
        xs, ys, xq, yq = sample_tasks(meta_batch, 10, generator)
        fast = meta.adapt(support_loss(model, xs, ys), expand_params(meta.params, meta_batch))  # θ → θ′ᵢ
        info = meta.step(task_mse(model, fast.params, xq, yq).mean())  # θ by β; then α and β by hypergradient
        if i == 1 or i % max(1, iterations // 10) == 0:
            print(f"iteration {i:5d}: query MSE {info.loss:7.3f}  α {info.alpha:.5f}  β {info.beta:.6f}")

    before, after, after10 = heldout_mse(0), heldout_mse(1), heldout_mse(10)
    print(f"held-out MSE (100 new sinusoids): before adaptation {before:.3f}, after 1 step {after:.3f}, "
          f"after 10 steps {after10:.3f}")
    print(f"final rates: α {meta.alpha.mean():.5f}, β {meta.beta:.6f}")
    # meta.state_dict() (with model.state_dict()) resumes all of it exactly: α, β, Adam's moments.


if __name__ == "__main__":
    main()
