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
    module_buffers,
)
from rl_alphamaml.meta.optimizer import MetaGradients, MetaOptimizer, StepInfo
from rl_alphamaml.meta.outer import OuterConfig, OuterOptimizer
from rl_alphamaml.meta.rates import HypergradientRule, InnerConfig, InnerRate, default_hyper_lr

__all__ = [
    "Adapted",
    "HypergradientRule",
    "InnerConfig",
    "InnerRate",
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
    "module_buffers",
]
