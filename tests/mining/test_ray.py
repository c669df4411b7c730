"""Mining on Ray: a local multi-node cluster gives the same records as one machine, a dead actor's
unfinished theorems are mined elsewhere exactly once, no actor left ends the run resumably.

Ray behaviour relied on (ray 2.60.0): ``ray.cluster_utils.Cluster`` starts several raylets on one
machine, each with its own ``resources`` (python/ray/cluster_utils.py, ``Cluster.add_node``); an
actor requesting a custom resource is placed only on a node that declares it (docs: ray-core/
scheduling/resources, "Custom resources"); with ``max_restarts=0`` a killed actor stays dead and
every call still pending on it raises ``RayActorError`` (docs: ray-core/fault_tolerance/actors,
"Actor process failure": at-most-once, the error may come although the task ran).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import sys
from pathlib import Path

import pandas as pd
import pytest

from workbench.mining.output import read_status_lines
from workbench.mining.run import MineSettings, mine, mine_async

from .test_run import check_output, expected_names

RECORD_COLUMNS = ["theorem_name", "state_id", "parent_state_id", "label", "state_pp", "tactic_applied",
                  "record_kind", "depth_from_root", "remaining_depth", "is_proof_complete", "num_goals"]
NODES = 3


def records(out: Path) -> pd.DataFrame:
    from workbench.trajectory import read_trajectories

    df = read_trajectories(out)[RECORD_COLUMNS]
    return df.sort_values(["theorem_name", "state_id"]).reset_index(drop=True)


def status(out: Path) -> list[tuple]:
    return sorted((s["theorem"], s["status"], s["reason"], s["records"]) for s in read_status_lines(out))


# --- without a cluster -----------------------------------------------------------------------------


def test_ray_flag_without_ray_installed_names_the_install_command(tmp_path, monkeypatch, capsys):
    from workbench.cli import main
    from workbench.errors import EXIT_ENVIRONMENT

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code = main(["mine", "--output", str(tmp_path / "o"), "--lean", "simulated", "--ray", "local"])
    assert code == EXIT_ENVIRONMENT  # a missing outside dependency, as every command reports it (issue 23)
    assert "pip install 'workbench[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists(), "nothing is loaded or written before the check"


def test_only_alive_nodes_offering_lean_get_an_actor():
    from workbench.mining.ray_backend import lean_nodes

    nodes = [{"NodeID": "a", "Alive": True, "Resources": {"CPU": 8.0, "lean": 1.0}},
             {"NodeID": "b", "Alive": True, "Resources": {"CPU": 8.0}},
             {"NodeID": "c", "Alive": False, "Resources": {"lean": 1.0}}]
    assert [n["NodeID"] for n in lean_nodes(nodes)] == ["a"]


class _Method:
    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args):
        return asyncio.ensure_future(self.fn(*args))


class _FakeActor:
    """Stands in for an actor handle: ``walk`` answers, or raises what a dead Ray actor raises."""

    def __init__(self, name: str, dies_after: int | None = None, error: BaseException | None = None) -> None:
        self.name, self.dies_after, self.error, self.calls = name, dies_after, error, 0
        self.walk = _Method(self._walk)

    async def _walk(self, theorem):
        from ray.exceptions import RayActorError

        from workbench.mining.walk import TheoremResult

        self.calls += 1
        call = self.calls
        await asyncio.sleep(0)  # yield like a remote call would
        if self.error is not None:
            raise self.error
        if self.dies_after is not None and call > self.dies_after:
            raise RayActorError(error_msg=f"{self.name} died")
        return TheoremResult(theorem.full_name, "completed", "qed"), {"busy_fraction": 0.5, "restarts_by_cause": {}}


def _executor_with(actors, in_flight: int):
    from workbench.mining.ray_backend import RayExecutor, _Actor

    ex = RayExecutor(MineSettings(ray_address="local", concurrency=in_flight), [])
    ex.actors = [_Actor(a, a.name, info={"hostname": a.name, "lean_workers": 1}) for a in actors]
    return ex


def _theorems(n: int):
    from workbench.traces import bundled_sample_path, load_traces

    return load_traces(bundled_sample_path()).theorems[:n]


def test_a_dead_actors_theorems_go_to_the_others_exactly_once():
    pytest.importorskip("ray")
    todo = _theorems(12)
    dying, healthy = _FakeActor("dying", dies_after=2), _FakeActor("healthy")
    ex = _executor_with([dying, healthy], in_flight=3)
    got: list[str] = []

    async def run():
        await asyncio.gather(*ex.start(todo, lambda r: got.append(r.theorem)))

    asyncio.run(run())
    assert sorted(got) == sorted(t.full_name for t in todo) and len(got) == len(set(got))
    stats = ex.stats()
    assert stats.actors_lost == 1 and stats.duplicates_dropped == 0
    # dying answered 2 calls; every other call it got (those in flight when it failed) re-queued its
    # own theorem, and its places stopped taking work once it was known dead
    assert stats.requeued == dying.calls - 2 >= 1
    assert [n["theorems"] for n in stats.nodes] == [2, 10]


def test_no_actor_left_is_an_error_after_every_finished_theorem_was_delivered():
    pytest.importorskip("ray")
    from workbench.mining.ray_backend import NoLeanActors

    todo = _theorems(10)
    ex = _executor_with([_FakeActor("a", dies_after=1), _FakeActor("b", dies_after=2)], in_flight=2)
    got: list[str] = []

    async def run():
        results = await asyncio.gather(*ex.start(todo, lambda r: got.append(r.theorem)), return_exceptions=True)
        return [r for r in results if isinstance(r, BaseException)]

    errors = asyncio.run(run())
    assert errors and all(isinstance(e, NoLeanActors) for e in errors)
    assert "--resume" in str(errors[0]) and f"{10 - len(got)} theorems unfinished" in str(errors[0])
    assert len(got) == 3 == len(set(got))


def test_a_walk_error_ends_the_run_instead_of_waiting_forever():
    pytest.importorskip("ray")
    todo = _theorems(6)
    ex = _executor_with([_FakeActor("bad", error=RuntimeError("policy server gone")), _FakeActor("ok")], in_flight=2)

    async def run():
        return await asyncio.wait_for(asyncio.gather(*ex.start(todo, lambda r: None), return_exceptions=True), 30)

    results = asyncio.run(run())
    assert any(isinstance(r, RuntimeError) and "policy server gone" in str(r) for r in results)


# --- a local multi-node cluster mining the real sample through the simulator ------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(nodes: int, attempts: int = 3):
    """``nodes`` raylets on this machine, each declaring ``lean: 1`` (the head, where the driver connects, too).

    Without a given port, a node's metrics agent binds a random one and reports it through a file
    the raylet waits for (Ray docs, "Port Service Discovery": bind-then-report); on a loaded 2-core
    machine the agent can start later than the raylet waits (ray 2.60.0 aborts with "Timed out
    waiting for file .../metrics_agent_port_*"), so each node is given its port. A node also has a
    fixed 30 s to register (ray/_private/node.py, ``raylet_start_wait_time_s``): a cluster that
    failed to start is started again.
    """
    from ray.cluster_utils import Cluster

    for attempt in range(attempts):
        c = Cluster()
        try:
            for _ in range(nodes):
                c.add_node(num_cpus=1, resources={"lean": 1}, include_dashboard=False,
                           metrics_agent_port=_free_port())
            c.wait_for_nodes()
            return c
        except Exception:
            c.shutdown()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    c = start_cluster(NODES)
    ray.init(address=c.address)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def real_settings(traces: Path, out: Path, **kw) -> MineSettings:
    # 2 CPU cores for the whole cluster: one Lean process per node, generous timeouts so a slow
    # machine cannot turn a walk into a timeout (which would make the two runs differ).
    base = dict(traces=str(traces), output=str(out), num_theorems=9, seed=3, lean="simulated", mode="overwrite",
                lean_workers=1, concurrency=3, candidates_per_step=4, target_negatives=6,
                simulator_args=("--latency-scale", "0.2"), tactic_timeout_s=60.0, theorem_timeout_s=600.0,
                progress=False)
    return MineSettings(**(base | kw))


@pytest.fixture(scope="module")
def real_subset(shared_traces_dir, tmp_path_factory) -> Path:
    """The first 150 entries of the real val split (each actor indexes its traces for the policy: keep it small)."""
    entries = json.loads((shared_traces_dir / "random" / "val.json").read_text())
    path = tmp_path_factory.mktemp("traces") / "val_150.json"
    path.write_text(json.dumps(entries[:150]))
    return path


@pytest.fixture(scope="module")
def reference(real_subset, tmp_path_factory):
    """The single-machine run every Ray run must reproduce."""
    settings = real_settings(real_subset, tmp_path_factory.mktemp("ref") / "out", lean_workers=2)
    mine(settings)
    return settings, records(Path(settings.output)), status(Path(settings.output))


def test_cluster_mines_the_same_records_as_one_machine(cluster, reference, tmp_path):
    ref_settings, ref_records, ref_status = reference
    settings = dataclasses.replace(ref_settings, output=str(tmp_path / "out"), ray_address=cluster.address,
                                   lean_workers=1)
    result = mine(settings)
    out = Path(settings.output)
    check_output(out, expected_names(settings))
    pd.testing.assert_frame_equal(records(out), ref_records)
    assert status(out) == ref_status
    assert len(ref_records) > 20 and (ref_records.label == "negative").any()
    executor = json.loads((out / "run_config.json").read_text())["executor"]
    assert executor["kind"] == "ray" and len(executor["nodes"]) == NODES
    nodes = result.pool_stats["nodes"]
    assert sum(n["theorems"] for n in nodes) == 9 and all(n["theorems"] > 0 for n in nodes), nodes
    assert result.pool_stats["requeued"] == 0 and result.pool_stats["actors_lost"] == 0


def _on_first_delivery(monkeypatch, act):
    """Wrap the executor's public ``start`` so that right after the first result is delivered to the driver,
    ``act(executor, delivering_actor)`` runs."""
    from workbench.mining.ray_backend import RayExecutor

    original = RayExecutor.start
    done: list = []

    def start(self, todo, on_result):
        def deliver(result):
            on_result(result)
            if not done:
                done.append(result)
                act(self, next(a for a in self.actors if a.finished))  # the one actor with a delivered result

        return original(self, todo, deliver)

    monkeypatch.setattr(RayExecutor, "start", start)


def _kill_on_first_delivery(monkeypatch, choose):
    """The first delivered result kills ``choose(executor, delivering_actor)``."""
    import ray

    seen: dict = {}

    def kill(executor, who):
        seen["executor"] = executor
        seen["victims"] = victims = choose(executor, who)
        seen["in_flight"] = {id(v): set(v.in_flight) for v in victims}
        for v in victims:
            ray.kill(v.handle, no_restart=True)

    _on_first_delivery(monkeypatch, kill)
    return seen


def test_killing_one_nodes_actor_mid_run_mines_every_theorem_exactly_once(cluster, reference, tmp_path, monkeypatch):
    ref_settings, ref_records, ref_status = reference
    settings = dataclasses.replace(ref_settings, output=str(tmp_path / "out"), ray_address=cluster.address,
                                   lean_workers=1, flush_every_theorems=1)
    # the busiest actor other than the one that just answered: it has walks in flight
    seen = _kill_on_first_delivery(monkeypatch, lambda ex, who: [max(
        (a for a in ex.actors if a is not who), key=lambda a: len(a.in_flight))])
    result = mine(settings)
    out = Path(settings.output)
    check_output(out, expected_names(settings))
    pd.testing.assert_frame_equal(records(out), ref_records)
    assert status(out) == ref_status
    (victim,) = seen["victims"]
    stats = result.pool_stats
    assert not victim.alive and stats["actors_lost"] == 1
    # its walks in flight were lost and mined elsewhere; nothing arrived (or was written) twice
    assert seen["in_flight"][id(victim)] and stats["requeued"] >= 1 and stats["duplicates_dropped"] == 0
    assert sum(n["theorems"] for n in stats["nodes"]) == 9


def test_no_actor_left_stops_resumably_and_resume_on_ray_completes(cluster, reference, tmp_path, monkeypatch):
    from workbench.mining.ray_backend import NoLeanActors

    ref_settings, ref_records, ref_status = reference
    settings = dataclasses.replace(ref_settings, output=str(tmp_path / "out"), ray_address=cluster.address,
                                   lean_workers=1, flush_every_theorems=1)
    seen = _kill_on_first_delivery(monkeypatch, lambda ex, who: list(ex.actors))
    with pytest.raises(NoLeanActors, match="--resume"):
        mine(settings)
    out = Path(settings.output)
    first = read_status_lines(out)
    assert 1 <= len(first) < 9, "the finished theorem(s) are on disk, the rest is not"
    monkeypatch.undo()
    resumed = mine(dataclasses.replace(settings, mode="resume"))
    assert resumed.this_run["already_finished"] == len(first)
    check_output(out, expected_names(settings))
    pd.testing.assert_frame_equal(records(out), ref_records)
    assert status(out) == ref_status
    assert seen["executor"].stats().actors_lost == NODES


def _dies(handle, within_s: float = 120.0) -> bool:
    """Whether calls on the actor start failing as dead within ``within_s``. ``ray.kill`` returns before the kill
    lands (it goes through the GCS; a call sent meanwhile still runs: ray-project/ray#34917, "ray.kill is an
    asynchronous API", and #14154), so one call right after a kill may succeed: call until one fails."""
    import time

    import ray
    from ray.exceptions import RayActorError

    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            ray.get(handle.pool_stats.remote(), timeout=within_s)
        except RayActorError:
            return True
    return False


def test_cancelled_ray_run_stops_its_actors_and_resumes(cluster, reference, tmp_path, monkeypatch):
    ref_settings, ref_records, _ = reference
    settings = dataclasses.replace(ref_settings, output=str(tmp_path / "out"), ray_address=cluster.address,
                                   lean_workers=1, flush_every_theorems=1)
    box: dict = {}

    def cancel(executor, who):
        box["executor"] = executor
        box["task"].cancel()  # what Ctrl-C does to the run (run_sync cancels the task)

    _on_first_delivery(monkeypatch, cancel)

    async def interrupted():
        box["task"] = asyncio.ensure_future(mine_async(settings))
        with pytest.raises(asyncio.CancelledError):
            await box["task"]

    asyncio.run(interrupted())
    monkeypatch.undo()
    out = Path(settings.output)
    assert 1 <= len(read_status_lines(out)) < 9
    for actor in box["executor"].actors:  # killed on the way out
        assert _dies(actor.handle), "an actor outlived its run"
    mine(dataclasses.replace(settings, mode="resume", ray_address=None))  # a Ray run's output resumes anywhere
    check_output(out, expected_names(settings))
    pd.testing.assert_frame_equal(records(out), ref_records)
