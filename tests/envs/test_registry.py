"""A task family of the user's own, registered with ``envs.register_family``: known to every id-taking function,
stepped by ``BatchedEnv`` like a built-in family, accepted by the RL learner's ``env.id``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import envs
from envs import registry
from envs.tasks import GoalTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class CornerNavigationEnv(envs.Navigation2DEnv):
    """Navigation2D whose goals are the four corners of [−0.4, 0.4]²."""

    family_name = "CornerNavigation-v0"

    def _sample(self, n: int, rng: np.random.Generator) -> list[GoalTask]:
        corners = 0.4 * (2 * rng.integers(0, 2, size=(n, 2)) - 1)
        return [GoalTask((float(x), float(y))) for x, y in corners]


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever a test registers is gone afterwards (gymnasium's registry and ours)."""
    monkeypatch.setattr(registry, "_USER_FAMILIES", {})
    before = set(gymnasium.registry)
    yield
    for env_id in set(gymnasium.registry) - before:
        del gymnasium.registry[env_id]


@pytest.mark.usefixtures("clean_registry")
def test_a_registered_family_is_known_everywhere_an_id_is_taken() -> None:
    full = envs.register_family("CornerNavigation-v0", CornerNavigationEnv, max_episode_steps=30)
    assert full == "rl_alphamaml/CornerNavigation-v0"
    assert envs.resolve_id("CornerNavigation-v0") == full
    assert envs.horizon_of(full) == 30 and envs.family_class(full) is CornerNavigationEnv
    assert full not in envs.FAMILY_IDS  # the built-in list is unchanged
    env = envs.make("CornerNavigation-v0")
    tasks = env.unwrapped.sample_tasks(8, np.random.default_rng(0))
    assert {abs(c) for t in tasks for c in t.goal} == {0.4}
    env.reset(seed=0, options={"task": tasks[0]})
    steps = 0
    while True:
        *_, terminated, truncated, info = env.step(np.array([0.1, 0.0]))
        steps += 1
        if terminated or truncated:
            break
    assert steps == 30 and info["task"] == tasks[0]
    assert envs.make_unwrapped(full).get_task() == GoalTask((0.0, 0.0))


@pytest.mark.usefixtures("clean_registry")
def test_batched_env_steps_a_registered_family_like_its_single_env() -> None:
    full = envs.register_family("mylab/CornerNavigation-v0", CornerNavigationEnv, max_episode_steps=5)
    assert full == "mylab/CornerNavigation-v0"
    benv = envs.BatchedEnv(full, n_slots=4)
    tasks = benv.sample_tasks(2, np.random.default_rng(1))
    actions = np.random.default_rng(2).uniform(-0.2, 0.2, size=(5, 4, 2))
    benv.reset(tasks, seeds=0)
    batched = [benv.step(a).reward for a in actions]
    assert benv.done and benv.t == 5
    env = envs.make(full)
    for slot in range(4):
        env.reset(seed=slot, options={"task": tasks[slot // 2]})
        single = [env.step(a[slot])[1] for a in actions]
        assert np.array_equal(single, [r[slot] for r in batched])


@pytest.mark.usefixtures("clean_registry")
def test_the_rl_config_takes_a_registered_family() -> None:
    from rl_alphamaml.cli import load_experiment_config
    from rl_alphamaml.errors import ConfigError

    with pytest.raises(ConfigError, match=r"env\.id: unknown task family 'CornerNavigation-v0'"):
        load_experiment_config(CONFIGS / "navigation2d.yaml", ["env.id=CornerNavigation-v0"])
    envs.register_family("CornerNavigation-v0", CornerNavigationEnv, max_episode_steps=30)
    config, _ = load_experiment_config(CONFIGS / "navigation2d.yaml", ["env.id=CornerNavigation-v0"])
    assert config.env.id == "rl_alphamaml/CornerNavigation-v0"  # goal_tolerance applies: a navigation family


@pytest.mark.usefixtures("clean_registry")
def test_registering_again_replaces_and_mistakes_are_clear() -> None:
    class Redefined(CornerNavigationEnv):
        pass

    envs.register_family("CornerNavigation-v0", CornerNavigationEnv, max_episode_steps=30)
    envs.register_family("CornerNavigation-v0", Redefined, max_episode_steps=40)  # e.g. a notebook cell re-run
    assert envs.family_class("CornerNavigation-v0") is Redefined and envs.horizon_of("CornerNavigation-v0") == 40
    assert type(envs.make("CornerNavigation-v0").unwrapped) is Redefined
    with pytest.raises(ValueError, match="is a built-in family"):
        envs.register_family("Navigation2D-v0", CornerNavigationEnv, max_episode_steps=100)
    with pytest.raises(ValueError, match=r"must be a gymnasium\.Env subclass that is also an envs\.base\.TaskFamily"):
        envs.register_family("Plain-v0", gymnasium.Env, max_episode_steps=10)
    with pytest.raises(ValueError, match="max_episode_steps must be a positive integer"):
        envs.register_family("Corner2-v0", CornerNavigationEnv, max_episode_steps=0)
    with pytest.raises(ValueError, match="env_id must be"):
        envs.register_family("a/b/c-v0", CornerNavigationEnv, max_episode_steps=10)
    gymnasium.register(id="elsewhere/Thing-v0", entry_point=CornerNavigationEnv)
    with pytest.raises(ValueError, match="already registered with gymnasium by something else"):
        envs.register_family("elsewhere/Thing-v0", CornerNavigationEnv, max_episode_steps=10)
    with pytest.raises(envs.UnknownEnvError, match=r"Known families: .*rl_alphamaml/CornerNavigation-v0"):
        envs.resolve_id("CornerNavigaton-v0")
