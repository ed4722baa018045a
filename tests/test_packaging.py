"""Packaging: our top-level `envs` and `agents` must not collide with PyPI's packages of the same name."""

from __future__ import annotations

from importlib.metadata import packages_distributions


def test_no_other_distribution_provides_envs_or_agents() -> None:
    providers = packages_distributions()
    for name in ("envs", "agents", "rl_alphamaml"):
        others = [d for d in providers.get(name, []) if d.replace("_", "-").lower() != "rl-alphamaml"]
        assert not others, f"another installed distribution also provides `{name}`: {others}"
