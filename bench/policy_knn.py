"""Recall of the offline retrieval policy on held-out theorems, next to a most-frequent-tactics baseline.

Theorems are split by theorem (``workbench.traces.split_by_theorem``); the retrieval policy indexes the
training theorems' (state, tactic) pairs and is queried with every held-out step's canonical state.
A hit is the ground-truth tactic among the top-k proposals, compared exactly after whitespace
normalisation, or by tactic name (first word). The baseline proposes the k most frequent training
tactics for every state; ``knn_X+freqF`` gives F of the k slots to that list (``fill_frequent``).

    .venv/bin/python bench/policy_knn.py [--traces PATH] [--index tfidf minilm] [--fill 0 2] [--out reports/policy_knn.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "leandojo_mathlib4"
sys.path.insert(0, str(REPO))

from workbench.policy.extract import normalize_tactic, tactic_name  # noqa: E402
from workbench.policy.knn import EmbeddingStateIndex, TfidfStateIndex  # noqa: E402
from workbench.policy.retrieval import RetrievalPolicy  # noqa: E402
from workbench.states import canonical_state  # noqa: E402
from workbench.traces import bundled_sample_path, load_traces, split_by_theorem  # noqa: E402

log = logging.getLogger("bench.policy_knn")


def recall(proposals: list[list[str]], truths: list[str], k: int) -> dict[str, float]:
    n = len(truths)
    exact = sum(normalize_tactic(t) in [normalize_tactic(p) for p in ps[:k]] for ps, t in zip(proposals, truths))
    names = sum(tactic_name(t) in [tactic_name(p) for p in ps[:k]] for ps, t in zip(proposals, truths))
    return {f"exact@{k}": exact / n, f"name@{k}": names / n}


def metrics(proposals: list[list[str]], truths: list[str]) -> dict[str, float]:
    return {**recall(proposals, truths, 1), **recall(proposals, truths, 8)}


async def neighbours(policy: RetrievalPolicy, queries: list[tuple[str, str]], k: int) -> tuple[list, float]:
    """The index's answer for every query, and the median query latency (ms)."""
    index = policy.index
    if isinstance(index, EmbeddingStateIndex):
        # batched encoding of the queries (what a mining run would do per step batch)
        t0 = time.perf_counter()
        results = await index.query_many([q for q, _ in queries], policy.query_k(k, None) + 64)
        return results, (time.perf_counter() - t0) / max(1, len(queries)) * 1000
    results, latencies = [], []
    for q, thm in queries:
        t0 = time.perf_counter()
        results.append(await index.query(q, policy.query_k(k, thm)))
        latencies.append((time.perf_counter() - t0) * 1000)
    return results, statistics.median(latencies)


async def main_async(args: argparse.Namespace) -> dict:
    source = Path(args.traces) if args.traces else (SHARED if (SHARED / "random").is_dir() else bundled_sample_path())
    traces = load_traces(source)
    train, held = split_by_theorem(traces.theorems, args.val_fraction, args.seed)
    queries = [(canonical_state(s.state_before), t.full_name) for t in held for s in t.steps]
    truths = [s.tactic for t in held for s in t.steps]
    if args.max_queries and len(queries) > args.max_queries:
        queries, truths = queries[:args.max_queries], truths[:args.max_queries]
    result: dict = {"source": str(source), "theorems": len(traces.theorems), "train_theorems": len(train),
                    "heldout_theorems": len(held), "queries": len(queries), "seed": args.seed,
                    "val_fraction": args.val_fraction, "k": args.k, "methods": {}}

    freq = Counter(normalize_tactic(s.tactic) for t in train for s in t.steps)
    top = [t for t, _ in freq.most_common(args.k)]
    result["methods"]["most_frequent"] = {**metrics([top] * len(truths), truths), "top_tactics": top}

    for name in args.index:
        if name == "tfidf":
            index = TfidfStateIndex()
        else:
            from workbench.encode.local import LocalEncoder

            index = EmbeddingStateIndex(LocalEncoder(batch_size=64), batch_size=256)
        t0 = time.perf_counter()
        policy = await RetrievalPolicy.build(train, index=index)
        build_s = time.perf_counter() - t0
        answers, ms = await neighbours(policy, queries, args.k)
        for fill in args.fill:
            proposals = [[c.tactic for c in policy.propose(idx, sims, args.k, thm, fill_frequent=fill)]
                         for (_, thm), (idx, sims) in zip(queries, answers)]
            key = f"knn_{name}" + (f"+freq{fill}" if fill else "")
            result["methods"][key] = {**metrics(proposals, truths), "index_pairs": len(policy.pairs),
                                      "build_s": round(build_s, 2), "query_ms": round(ms, 2)}
            log.info("%s: %s", key, result["methods"][key])
    return result


def table(result: dict) -> str:
    lines = ["| method | exact@1 | exact@8 | name@1 | name@8 | build s | query ms |",
             "|---|---|---|---|---|---|---|"]
    for name, m in result["methods"].items():
        lines.append(f"| {name} | {m['exact@1']:.3f} | {m['exact@8']:.3f} | {m['name@1']:.3f} | {m['name@8']:.3f} | "
                     f"{m.get('build_s', '')} | {m.get('query_ms', '')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", default=None, help="LeanDojo traces (default: ../shared sample, else bundled)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--index", nargs="+", choices=["tfidf", "minilm"], default=["tfidf", "minilm"])
    parser.add_argument("--fill", type=int, nargs="+", default=[0, 2],
                        help="RetrievalPolicy fill_frequent values to evaluate (slots for frequent tactics)")
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--out", default=None, help="write the result JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))
    print(table(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
