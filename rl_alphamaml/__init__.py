"""rl_alphamaml: meta-train robot policies and measure how fast they adapt (Alpha MAML).

Subpackages: :mod:`rl_alphamaml.meta` (the meta-optimizer core), :mod:`rl_alphamaml.supervised`
(sinusoid regression and Omniglot few-shot classification). The task families live in the top-level
package ``envs`` and the reinforcement learners in ``agents``.
"""

__version__ = "0.1.0"
