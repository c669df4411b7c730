"""The house's shape (issue 23): layers point one way and no two modules import each other.

The import graph is read from the source (every ``import``, function-level and ``TYPE_CHECKING`` ones
included). Each module sits in a tier; an import may only go to the same tier or a lower one, and the
graph has no cycle. A new module must be placed here: the test names it until it is.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "workbench"

# Lowest first. docs/ARCHITECTURE.md draws the same picture.
TIERS: list[list[str]] = [
    # foundation: records and pure rules with no outside system
    ["workbench", "aio", "checks", "progress", "outputs", "render", "htmltable", "standin_http", "http_pool", "states",
     "tactics", "namespaces", "traces", "trajectory", "trace_stats", "scope"],
    # Lean: wire protocol -> one process -> pool -> session -> backend (the simulator is a program of its own)
    ["lean.errors", "lean.config", "lean.guard", "lean.binders", "lean.printer", "lean.simrules", "lean.simnamespace",
     "lean.simversion", "lean.simsource"],
    ["lean.protocol"],
    ["lean.results", "lean.process"],
    ["lean.pool"],
    ["lean.session"],
    ["lean.backend", "lean.simulator"],
    ["lean"],
    # tracing's pure rules: invocations -> the trace format
    ["tracing", "tracing.convert"],
    # encoders, then the policy (its prompts reuse the encoders' state text)
    ["encode.text", "encode.identity"],
    ["encode.local", "encode.sidecar", "encode.cache", "encode.standin_sidecar", "encode.hashed", "encode.concat"],
    ["encode.hf"],
    ["encode.hf_args", "encode.factory", "encode.server"],
    ["encode"],
    ["policy.errors", "policy.breaker", "policy.extract", "policy.capacity", "policy.prompt", "policy.knn"],
    ["policy.base"],
    ["policy.retrieval", "policy.sglang"],
    ["policy", "policy.standin_server"],
    # trace analysis that knows Lean's binders
    ["trace_breaks"],
    # mining: records and rules -> the walk -> settings -> executors -> the run -> readers and the CLI
    ["mining", "mining.records", "mining.labels", "mining.commit", "mining.export", "mining.summary",
     "mining.progress"],
    ["mining.output"],
    ["mining.walk.context"],
    ["mining.walk.align", "mining.walk.start", "mining.walk.chains"],
    ["mining.walk.ground_truth", "mining.walk.candidates"],
    ["mining.walk.theorem"],
    ["mining.walk"],
    ["mining.settings"],
    ["mining.identity", "mining.executor", "mining.replay_check"],
    ["mining.flags", "mining.ray_backend"],
    ["mining.run", "tracing.run"],
    ["mining.report", "mining.drilldown"],
    # the energy head: pure pieces -> data and checkpoints -> training -> settings/evaluation -> pipeline
    ["ebm.features", "ebm.losses", "ebm.metrics", "ebm.synthetic", "ebm.perturb"],
    ["ebm.records"],
    ["ebm.baselines", "ebm.checks"],
    ["ebm.model"],
    ["ebm.data", "ebm.checkpoint"],
    ["ebm.train", "ebm.finetune"],
    ["ebm.evaluate", "ebm.settings", "ebm.scorer"],
    ["ebm.pipeline"],
    ["ebm", "ebm.plots"],
    # the entry points: environment failures as a few lines, the doctor (it speaks every system and
    # reuses the errors' advice), one module per command, the dispatcher
    ["errors"],
    ["doctor.checks"],
    ["doctor.report", "doctor.lean", "doctor.sglang", "doctor.encoder"],
    ["doctor.run"],
    ["doctor"],
    ["traces_cli", "encode.cli", "encode.serve_cli", "mining.cli", "ebm.cli", "doctor.cli"],
    ["tracing.cli"],
    ["cli"],
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _tier_of() -> dict[str, int]:
    return {("workbench" if m == "workbench" else f"workbench.{m}"): i for i, tier in enumerate(TIERS) for m in tier}


def test_every_module_has_a_tier():
    tier = _tier_of()
    assert sorted(set(import_graph()) - set(tier)) == [], "place new modules in TIERS (and docs/ARCHITECTURE.md)"
    assert sorted(set(tier) - set(import_graph())) == [], "TIERS names modules that no longer exist"


def test_no_two_modules_import_each_other():
    assert _cycles(import_graph()) == []


def test_no_module_imports_from_a_tier_above_it():
    tier = _tier_of()
    upward = sorted(f"{src} -> {dst}" for src, dsts in import_graph().items() for dst in dsts
                    if src in tier and dst in tier and tier[dst] > tier[src])
    assert upward == []


def test_the_checker_sees_function_level_imports_and_cycles():
    edges = import_graph()
    assert "workbench.mining.ray_backend" in edges["workbench.errors"]  # imported inside a function
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
