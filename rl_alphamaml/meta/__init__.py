"""The meta-optimizer core shared by the supervised and reinforcement learners.

Functional inner-loop adaptation (:func:`adapt`), the inner rate α (:class:`InnerRate`), the outer
optimizer with rate β (:class:`OuterOptimizer`), their hypergradient updates (Alpha MAML [1]; hypergradient
descent [2]) and the :class:`MetaOptimizer` that ties them together.

References:
    [1] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [2] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
"""

from rl_alphamaml.meta.adapt import (
    Adapted,
    Params,
    adapt,
    adaptation_curve,
    call,
    call_batched,
    expand_params,
    inner_update,
    inner_update_jvp,
    inner_update_vjp,
    module_buffers,
)
from rl_alphamaml.meta.hypergradient import HD_RULES, HypergradientRule, default_hyper_lr, make_rule
from rl_alphamaml.meta.optimizer import MetaGradients, MetaOptimizer, StepInfo
from rl_alphamaml.meta.outer import OuterConfig, OuterOptimizer
from rl_alphamaml.meta.rates import RATE_MODES, InnerConfig, InnerRate, InnerRateMode

__all__ = [
    "HD_RULES",
    "RATE_MODES",
    "Adapted",
    "HypergradientRule",
    "InnerConfig",
    "InnerRate",
    "InnerRateMode",
    "MetaGradients",
    "MetaOptimizer",
    "OuterConfig",
    "OuterOptimizer",
    "Params",
    "StepInfo",
    "adapt",
    "adaptation_curve",
    "call",
    "call_batched",
    "default_hyper_lr",
    "expand_params",
    "inner_update",
    "inner_update_jvp",
    "inner_update_vjp",
    "make_rule",
    "module_buffers",
]
