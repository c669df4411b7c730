"""The stand-in SGLang's finite capacity: SGLang's admission rule (sgl-project/sglang at 0003215c,
python/sglang/srt/managers/scheduler.py get_new_batch_prefill / get_num_allocatable_reqs and
_abort_on_queued_limit; io_struct.py _normalize_batch_inputs expands n samples into n requests)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from workbench.policy.capacity import QUEUE_FULL_MESSAGE, GenerationCapacity, QueueFull
from workbench.policy.standin_server import ScriptedCompleter, StandinSGLang


def _run_together(cap: GenerationCapacity, calls: list[int], seconds: float) -> list[float]:
    """Start every call at once (a barrier, not a sleep) and return each one's queue wait."""
    waits = [0.0] * len(calls)
    barrier = threading.Barrier(len(calls))

    def one(i: int, k: int) -> None:
        barrier.wait()
        waits[i] = cap.run(k, seconds)

    threads = [threading.Thread(target=one, args=(i, k)) for i, k in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return waits


def test_sequences_beyond_the_cap_wait_for_a_slot():
    cap = GenerationCapacity(max_running_requests=2)
    waits = _run_together(cap, [1, 1, 1], 0.05)
    assert cap.stats.max_running == 2           # never above the cap
    assert cap.stats.max_waiting >= 1
    assert cap.stats.calls_that_waited == 1     # exactly one of three waited ...
    assert max(waits) >= 0.025                  # ... for a running sequence to end (half its run: timer slack)
    assert cap.snapshot()["running"] == 0 and cap.snapshot()["waiting"] == 0


def test_n_samples_take_n_slots_and_a_call_larger_than_the_cap_still_finishes():
    cap = GenerationCapacity(max_running_requests=4)
    wait = cap.run(8, 0.02)                      # two waves of 4
    assert cap.stats.sequences == 8 and cap.stats.max_running == 4
    assert wait >= 0.02


def test_unbounded_server_never_queues():
    cap = GenerationCapacity(max_running_requests=None)
    waits = _run_together(cap, [8, 8, 8], 0.01)
    assert waits == [0.0, 0.0, 0.0] and cap.stats.max_waiting == 0 and cap.stats.max_running == 24


def test_queue_limit_refuses_with_sglangs_message():
    cap = GenerationCapacity(max_running_requests=1, max_queued_requests=1)
    with pytest.raises(QueueFull, match=QUEUE_FULL_MESSAGE):
        cap.run(3, 0.0)                          # 1 runs, 2 would wait: more than 1 queued
    assert cap.stats.rejected_calls == 1 and cap.stats.calls == 0
    assert cap.run(2, 0.0) >= 0.0                # 1 runs, 1 waits: allowed


@pytest.mark.parametrize("bad", [{"max_running_requests": 0}, {"max_queued_requests": -1}])
def test_bad_limits_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        GenerationCapacity(**bad)


def _post(url: str, payload: dict) -> tuple[int, dict | list]:
    req = urllib.request.Request(url + "/generate", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_standin_counts_n_samples_against_the_cap_and_reports_queue_stats():
    capacity = GenerationCapacity(max_running_requests=4, max_queued_requests=4)
    with StandinSGLang(ScriptedCompleter(["simp"]), capacity=capacity) as server:
        server.faults.latency_s = 0.01
        status, body = _post(server.url, {"text": "x", "sampling_params": {"n": 8}})
        assert status == 200 and len(body) == 8
        status, body = _post(server.url, {"text": "x", "sampling_params": {"n": 9}})  # 4 run, 5 would wait
        assert status == 503 and body == {"error": {"message": QUEUE_FULL_MESSAGE}}
        with urllib.request.urlopen(server.url + "/standin_capacity", timeout=10) as r:
            stats = json.loads(r.read())
    assert stats["sequences"] == 8 and stats["max_running"] == 4 and stats["rejected_calls"] == 1
    assert stats["max_running_requests"] == 4


def test_module_entry_point_takes_the_capacity_flags(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "script.json"
    script.write_text(json.dumps({"*": ["simp"]}))
    proc = subprocess.Popen([sys.executable, "-m", "workbench.policy.standin_server", "--port", "0", "--script",
                             str(script), "--max-running-requests", "4", "--max-queued-requests", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        url = proc.stdout.readline().split()[-1]
        assert _post(url, {"text": "p", "sampling_params": {"n": 6}})[0] == 200
        with urllib.request.urlopen(url + "/standin_capacity", timeout=10) as r:
            stats = json.loads(r.read())
        assert (stats["max_running_requests"], stats["max_queued_requests"]) == (4, 8)
        assert stats["sequences"] == 6 and stats["max_running"] == 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)
