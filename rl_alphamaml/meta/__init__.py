"""The meta-optimizer core shared by the supervised and reinforcement learners.

Functional inner-loop adaptation (:func:`adapt`), the inner rate α (:class:`InnerRate`), the outer
optimizer with rate β (:class:`OuterOptimizer`), their hypergradient updates (Alpha MAML: Behl, Baydin &
Torr 2019; Baydin et al. 2018) and the :class:`MetaOptimizer` that ties them together.
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
