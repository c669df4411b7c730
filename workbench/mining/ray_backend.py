"""Mining on a Ray cluster: one actor per Lean node, the driver stays the single writer.

Every node that can run Lean declares the custom resource ``lean`` when it joins the cluster
(Ray docs, "Resources" - custom resources are declared with ``ray start --resources``)::

    ray start --head --port=6379 --resources='{"lean": 1}'           # head node (mines too; drop the flag if not)
    ray start --address=HEAD_IP:6379 --resources='{"lean": 1}'        # every other Lean node
    workbench mine --ray auto --traces ... --output ...              # on the head node (or --ray HEAD_IP:6379)

``--ray local`` starts a one-node Ray instance on this machine offering ``lean: 1`` (dry runs, tests).

The driver (``mining.run.mine_async``) samples theorems, writes every output file and handles resume,
exactly as in a local run; :class:`RayExecutor` implements ``mining.executor.Executor`` in place of the
local one. It places one :class:`NodeMiner` actor on each alive node offering ``lean`` (hard node
affinity, ``lean: 1``); each actor builds its own Lean backend (``lean_workers`` processes) and policy
client from the :class:`~workbench.mining.settings.MineSettings` the driver ships, so worker nodes need no environment
variables beyond what Lean itself needs. The retrieval policy's index theorems travel once through the
object store; the simulator reads ``--traces`` on each node (a path every node must see).

Backpressure: at most ``theorems_in_flight`` theorems per actor. A finished theorem comes back whole
(records, attempts, status line) and is written by the driver as it arrives.

Faults follow Ray's actor semantics (docs: "Actor Fault Tolerance"): actors are created with
``max_restarts=0`` and calls with ``max_task_retries=0`` (at-most-once), so a dead actor or node
surfaces as ``RayActorError`` on each of its pending calls; exactly those theorems go back to the
queue for the remaining actors. A theorem is written only when its result arrives, and a second
result for a finished theorem is dropped, so nothing is written twice. The run fails with
:class:`NoLeanActors` only when no actor is left; what was finished is on disk and ``--resume``
continues. On exit (normal, error or Ctrl-C) the actors close their Lean processes and are killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from workbench import __version__
from workbench.mining.executor import open_lean, open_policy, walk_one
from workbench.mining.records import TheoremResult
from workbench.mining.settings import MineSettings
from workbench.traces import Theorem

__all__ = ["RESOURCE", "INSTALL_HELP", "RayNotInstalled", "NoLeanActors", "NodeMiner", "RayExecutor",
           "ClusterStats", "require_ray", "lean_nodes"]

log = logging.getLogger(__name__)

RESOURCE = "lean"  # the custom resource a Lean-capable node declares
INSTALL_HELP = "mining on Ray needs the ray extra: pip install 'workbench[ray]'"
START_HELP = (f"start each Lean node with: ray start --address=HEAD_IP:6379 --resources='{{\"{RESOURCE}\": 1}}' "
              f"(the head: ray start --head --resources='{{\"{RESOURCE}\": 1}}'), or use --ray local")
ACTOR_START_TIMEOUT_S = 900.0  # Mathlib imports on a cold node take minutes


class RayNotInstalled(RuntimeError):
    """``--ray`` was given but the ``ray`` package is not installed."""


class NoLeanActors(RuntimeError):
    """No actor is (or is left) to mine on; finished theorems are on disk and the run can resume."""


def require_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RayNotInstalled(INSTALL_HELP) from e
    return ray


def lean_nodes(nodes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alive nodes of ``ray.nodes()`` that offer the ``lean`` resource."""
    return [n for n in nodes if n.get("Alive") and n.get("Resources", {}).get(RESOURCE, 0) >= 1]


# --- the actor (plain class; wrapped with ray.remote when a run starts) ---------------------------


class NodeMiner:
    """Runs on one node: that node's LeanPool and policy client; walks the theorems the driver sends."""

    def __init__(self, settings: MineSettings, index_theorems: Sequence[Theorem], driver_version: str) -> None:
        self.settings = settings
        self.index_theorems = index_theorems
        self.driver_version = driver_version
        self.stack = contextlib.AsyncExitStack()
        self.lean: Any = None
        self.policy: Any = None
        self.walks: set[asyncio.Task] = set()

    async def start(self) -> dict[str, Any]:
        """Open Lean and the policy; what the driver records about this node."""
        host = socket.gethostname()
        if self.driver_version != __version__:
            raise RuntimeError(f"{host}: workbench {__version__} here, {self.driver_version} on the driver: "
                               "install the same version on every node")
        if self.settings.simulated and not self.settings.traces_path.exists():
            raise FileNotFoundError(f"{host}: {self.settings.traces_path} not found; the simulator reads the "
                                    "traces on every node (use a path all nodes share)")
        lean = open_lean(self.settings)
        self.policy = await self.stack.enter_async_context(open_policy(self.settings, self.index_theorems))
        self.index_theorems = ()  # the policy holds its index; free the copy
        self.lean = await self.stack.enter_async_context(lean)
        described = self.lean.describe()
        return {"hostname": host, "pid": os.getpid(), "lean_version": self.lean.version,
                "lean_command": described.get("command"), "lean_workers": described.get("workers"),
                "policy": {"policy": type(self.policy).__name__} | self.policy.provenance()}

    async def walk(self, theorem: Theorem) -> tuple[TheoremResult, dict[str, Any]]:
        """One theorem's result and this node's pool counters (the driver keeps the latest)."""
        task = asyncio.current_task()
        assert task is not None
        self.walks.add(task)
        try:
            result = await walk_one(theorem, self.lean, self.policy, self.settings.walk_params(),
                                    self.settings.simulated)
        finally:
            self.walks.discard(task)
        return result, self.pool_stats()

    def pool_stats(self) -> dict[str, Any]:
        s = self.lean.stats()
        return {"busy_fraction": s.busy_fraction, "restarts_by_cause": dict(s.restarts_by_cause),
                "tactic_requests": s.tactic_requests, "wall_s": s.wall_s, "replayed_steps": s.replayed_steps,
                "tactic_p50_s": s.tactic_p50_s, "tactic_p95_s": s.tactic_p95_s}

    async def close(self) -> None:
        """Stop walks still running (the driver dropped them) and close Lean and the policy."""
        for task in list(self.walks):
            task.cancel()
        await asyncio.gather(*self.walks, return_exceptions=True)
        await self.stack.aclose()


# --- the driver side -------------------------------------------------------------------------------


@dataclass
class _Actor:
    handle: Any
    node_id: str
    info: dict[str, Any] = field(default_factory=dict)
    alive: bool = True
    in_flight: set[str] = field(default_factory=set)
    finished: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    lost_because: str = ""


@dataclass
class ClusterStats:
    """Pool counters over every node (the latest each actor reported) plus the Ray run's own counts."""

    busy_fraction: float
    restarts_by_cause: dict[str, int]
    nodes: list[dict[str, Any]]
    requeued: int
    actors_lost: int
    duplicates_dropped: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Queue:
    """Theorems not yet finished: a FIFO that dead actors' theorems re-enter at the front."""

    def __init__(self, todo: Sequence[Theorem]) -> None:
        self.pending: deque[Theorem] = deque(todo)
        self.unfinished = {t.full_name for t in todo}
        self.changed = asyncio.Event()

    async def next(self, actor: _Actor) -> Theorem | None:
        """The next theorem for ``actor``; None when everything is finished or the actor is gone."""
        while actor.alive:
            if self.pending:
                return self.pending.popleft()
            if not self.unfinished:
                return None
            self.changed.clear()  # single-threaded: nothing can change between the checks and the wait
            await self.changed.wait()
        return None

    def requeue(self, theorem: Theorem) -> None:
        self.pending.appendleft(theorem)
        self.changed.set()

    def finish(self, name: str) -> bool:
        """Mark ``name`` finished; False when it already was (a duplicate result)."""
        if name not in self.unfinished:
            return False
        self.unfinished.discard(name)
        if not self.unfinished:
            self.changed.set()
        return True

    def abandon(self, name: str) -> None:
        """Stop waiting for ``name`` (its walk raised; the run is about to fail)."""
        self.finish(name)

    def wake(self) -> None:
        self.changed.set()


class RayExecutor:
    """``async with RayExecutor(settings, index_theorems) as ex: tasks = ex.start(todo, on_result)``.

    Implements ``mining.executor.Executor`` (as ``LocalExecutor`` does).
    """

    def __init__(self, settings: MineSettings, index_theorems: Sequence[Theorem]) -> None:
        if not settings.ray_address:
            raise ValueError("RayExecutor needs settings.ray_address (an address, 'auto' or 'local')")
        # Workers may run in another directory: ship absolute paths.
        self.settings = dataclasses.replace(settings, traces=str(settings.traces_path.resolve()))
        self.index_theorems = list(index_theorems)
        self.actors: list[_Actor] = []
        self.lean_version = ""
        self.policy_provenance: dict[str, Any] = {}
        self.requeued = self.duplicates = 0
        self._last_lost: _Actor | None = None  # its places raise NoLeanActors when no actor is left
        self._owns_connection = False
        self._ray: Any = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> "RayExecutor":
        self._ray = require_ray()
        t0 = time.monotonic()
        self._connect()
        try:
            await self._start_actors()
            log.info("Ray actors ready after %.1f s", time.monotonic() - t0)
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stop()

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():  # a caller (notebook, test) already connected: use that cluster
            return
        address = self.settings.ray_address
        if address == "local":
            ray.init(resources={RESOURCE: 1}, include_dashboard=False)
        else:
            ray.init(address=address)
        self._owns_connection = True

    async def _start_actors(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self._ray
        nodes = lean_nodes(ray.nodes())
        if not nodes:
            raise NoLeanActors(f"no alive Ray node offers the '{RESOURCE}' resource; {START_HELP}")
        remote = ray.remote(NodeMiner)
        index_ref = ray.put(self.index_theorems)  # once through the object store, not once per actor
        candidates = []
        for node in nodes:
            handle = remote.options(
                num_cpus=0, resources={RESOURCE: 1}, max_restarts=0, max_task_retries=0,
                max_concurrency=self.settings.theorems_in_flight + 4,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            ).remote(self.settings, index_ref, __version__)
            candidates.append(_Actor(handle, node["NodeID"]))
        starts = {asyncio.ensure_future(_await_ref(a.handle.start.remote())): a for a in candidates}
        done, late = await asyncio.wait(starts, timeout=ACTOR_START_TIMEOUT_S)
        failures = []
        for task, actor in starts.items():
            if task in late:
                task.cancel()
                failures.append(f"node {actor.node_id[:12]}: not started after {ACTOR_START_TIMEOUT_S:.0f} s "
                                f"(another run holding its '{RESOURCE}' resource?)")
            elif task.exception() is not None:
                failures.append(f"node {actor.node_id[:12]}: {_reason(task.exception())}")
            else:
                actor.info = task.result()
                self.actors.append(actor)
                continue
            self._kill(actor)
        for f in failures:
            log.warning("Ray actor did not start: %s", f)
        if not self.actors:
            raise NoLeanActors("no Ray actor started:\n  " + "\n  ".join(failures))
        versions = {a.info["lean_version"] for a in self.actors}
        if len(versions) > 1:
            raise RuntimeError(f"Lean nodes disagree on the REPL version {sorted(versions)}: labels from "
                               "different Lean versions must not be mixed in one output")
        self.lean_version = versions.pop()
        self.policy_provenance = self.actors[0].info["policy"]
        log.info("mining on Ray: %d actors (%s), %d Lean processes and %d theorems in flight each",
                 len(self.actors), ", ".join(a.info["hostname"] for a in self.actors), self.settings.lean_workers,
                 self.settings.theorems_in_flight)

    async def _stop(self) -> None:
        t0 = time.monotonic()
        alive = [a for a in self.actors if a.alive]
        try:  # let each node close its Lean processes; a node that does not answer is killed anyway
            closes = [asyncio.ensure_future(_await_ref(a.handle.close.remote())) for a in alive]
            if closes:
                await asyncio.wait(closes, timeout=30.0)
                for c in closes:
                    c.cancel()
        finally:
            for a in self.actors:
                self._kill(a)
            if self._owns_connection:
                self._ray.shutdown()
                self._owns_connection = False
            log.info("Ray actors stopped after %.1f s", time.monotonic() - t0)

    def _kill(self, actor: _Actor) -> None:
        """Ask Ray to kill the actor (asynchronous: it dies shortly after, ray-project/ray#34917). A refused
        kill is said, not swallowed: the actor may still hold its node's Lean resource."""
        try:
            self._ray.kill(actor.handle, no_restart=True)
        except Exception as e:  # noqa: BLE001 -- an actor already gone, or Ray shutting down
            log.warning("could not kill the Ray actor on node %s: %s", actor.node_id[:12], e)

    # -- the run ----------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {"kind": "ray", "address": self.settings.ray_address, "ray_version": self._ray.__version__,
                "lean_workers_per_node": self.settings.lean_workers,
                "theorems_in_flight_per_node": self.settings.theorems_in_flight,
                "nodes": [{"node_id": a.node_id} | {k: a.info[k] for k in ("hostname", "lean_workers", "lean_command")}
                          for a in self.actors]}

    def start(self, todo: Sequence[Theorem], on_result: Callable[[TheoremResult], None]) -> list[asyncio.Task]:
        queue = _Queue(todo)
        per_actor = max(1, min(self.settings.theorems_in_flight, len(todo)))
        return [asyncio.create_task(self._slot(actor, queue, on_result))
                for actor in self.actors for _ in range(per_actor)]

    async def _slot(self, actor: _Actor, queue: _Queue, on_result: Callable[[TheoremResult], None]) -> None:
        """One of an actor's ``theorems_in_flight`` places: send a theorem, deliver its result, repeat."""
        from ray.exceptions import RayActorError

        while (theorem := await queue.next(actor)) is not None:
            name = theorem.full_name
            actor.in_flight.add(name)
            try:
                result, actor.stats = await actor.handle.walk.remote(theorem)
            except RayActorError as e:  # the actor or its node died: only this theorem goes back
                queue.requeue(theorem)
                self.requeued += 1
                self._lost(actor, e, queue)
                break
            except Exception:
                queue.abandon(name)  # not written; the error ends the run once the other places finish
                raise
            finally:
                actor.in_flight.discard(name)
            self._deliver(actor, result, queue, on_result)
        if queue.unfinished and not any(a.alive for a in self.actors) and actor is self._last_lost:
            raise NoLeanActors(
                f"every Ray actor died ({'; '.join(a.lost_because for a in self.actors)}); {len(queue.unfinished)} "
                "theorems unfinished. Finished theorems are written: bring nodes back and rerun with --resume")

    def _deliver(self, actor: _Actor, result: TheoremResult, queue: _Queue,
                 on_result: Callable[[TheoremResult], None]) -> None:
        if not queue.finish(result.theorem):
            self.duplicates += 1
            log.warning("%s: second result dropped (already written)", result.theorem)
            return
        actor.finished += 1
        on_result(result)

    def _lost(self, actor: _Actor, error: BaseException, queue: _Queue) -> None:
        if not actor.alive:
            return
        actor.alive = False
        actor.lost_because = f"{actor.info.get('hostname', '?')}: {_reason(error)}"
        self._last_lost = actor
        alive = sum(a.alive for a in self.actors)
        log.warning("Ray actor on %s lost (%s): its %d unfinished theorems go back to the queue; %d actors left",
                    actor.info.get("hostname", actor.node_id[:12]), _reason(error), len(actor.in_flight), alive)
        queue.wake()  # this actor's idle places stop waiting

    def stats(self) -> ClusterStats:
        nodes = [{"hostname": a.info.get("hostname"), "node_id": a.node_id, "alive": a.alive,
                  "theorems": a.finished, "lost_because": a.lost_because or None} | a.stats for a in self.actors]
        weights = [(a.stats.get("busy_fraction", 0.0), a.info.get("lean_workers", 0)) for a in self.actors if a.stats]
        total = sum(w for _, w in weights)
        restarts: Counter = Counter()
        for a in self.actors:
            restarts.update(a.stats.get("restarts_by_cause", {}))
        return ClusterStats(busy_fraction=sum(b * w for b, w in weights) / total if total else 0.0,
                            restarts_by_cause=dict(restarts), nodes=nodes, requeued=self.requeued,
                            actors_lost=sum(not a.alive for a in self.actors), duplicates_dropped=self.duplicates)


async def _await_ref(ref: Any) -> Any:
    return await ref


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
