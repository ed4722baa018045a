"""The Ray backend on a real multi-node cluster (several raylets on this machine, ``ray.cluster_utils.Cluster``):
the cluster path the README documents (``sampler.address``), and a node that dies between two phases."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from agents.policy import GaussianMLPPolicy
from agents.sampler import Episodes, Sampler
from rl_alphamaml.meta import expand_params

ray = pytest.importorskip("ray", reason="the Ray backend needs the [distributed] extra (.ci/run installs it)")
from ray.cluster_utils import Cluster  # noqa: E402

from agents.ray_sampler import RaySampler  # noqa: E402

ENV = "rl_alphamaml/HalfCheetahVel-v0"
TASKS, EPISODES, HORIZON = 4, 2, 20


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node without CPUs (no worker lands on it) and three one-CPU worker nodes."""
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(3):
        made.add_node(num_cpus=1)
    made.wait_for_nodes()
    ray.init(address=made.address, log_to_driver=False, logging_level=logging.WARNING, configure_logging=False)
    yield made
    ray.shutdown()
    made.shutdown()


def same(a: Episodes, b: Episodes) -> bool:
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("obs", "actions", "rewards", "mask"))


def test_a_node_that_dies_loses_no_episodes(cluster: Cluster) -> None:
    local = Sampler(ENV, TASKS, EPISODES, threads=1, horizon=HORIZON)
    tasks = local.sample_tasks(np.random.default_rng(0))
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(local.obs_dim, local.act_dim, (16, 16), action_scale=0.1,
                               action_bounds=([-1.0] * local.act_dim, [1.0] * local.act_dim))
    params = {k: v + 0.05 * torch.randn(v.shape) for k, v in expand_params(policy.params(), TASKS).items()}
    expected = [local.sample(policy, params, tasks, (0, 1, j)) for j in range(2)]
    local.close()

    sampler = RaySampler(ENV, TASKS, EPISODES, horizon=HORIZON, address=cluster.address, workers=2)
    try:
        nodes = [ray.get(w.node_id.remote()) for w in sampler.workers]
        assert len(set(nodes)) == 2  # one CPU per node: the two workers run on two machines
        assert same(sampler.sample(policy, params, tasks, (0, 1, 0)), expected[0])
        victim = next(n for n in cluster.worker_nodes if n.node_id == nodes[0])
        cluster.remove_node(victim)  # the machine of worker 0 goes away, raylet and all
        # The next phase finds worker 0 gone, starts it again on the spare node and samples its tasks again.
        assert same(sampler.sample(policy, params, tasks, (0, 1, 1)), expected[1])
        assert sampler.restarts == 1
        moved = ray.get(sampler.workers[0].node_id.remote())
        assert moved not in nodes
    finally:
        sampler.close()
