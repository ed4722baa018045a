"""Supervised meta-learning on the shared core: sinusoid regression and Omniglot few-shot classification."""
