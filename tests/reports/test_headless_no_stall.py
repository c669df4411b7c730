"""Notebook 03 executed headless 20 times under CPU load without a stall (issue 24, item 1), and every
headless execution the project runs or documents has an execution timeout.

The stall (4 of 31 papermill runs, kernel idle): nbclient (papermill's and nbval's engine) waits for a
cell's ``execute_reply`` with ``await kc.shell_channel.get_msg(timeout)``, a pyzmq asyncio poll on the shell
socket. The drill-down used an ``ipywidgets.Output``; for every display captured in it nbclient's frontend
mimic (nbclient 0.11 ``output_widget.py``, ``OutputWidget.output`` -> ``sync_state``) sends a ``comm_msg``
on that same shell socket while the poll is pending, and jupyter_client's ``Session.send`` sends through a
*blocking* shadow of the asyncio socket (``zmq.Socket.shadow(stream.underlying)``), behind pyzmq's asyncio
bookkeeping: the edge-triggered ZMQ FD's wake-up for a reply that arrives meanwhile is consumed and the
poll sleeps on. With a deadline pyzmq's poller runs a real ``zmq_poll`` when it fires and finds the reply
(the cell "takes" exactly the timeout); without one (papermill's default) it waits forever
(jupyter/nbclient#312, open). Measured here before the fix: 10 of 100 executions of an Output-widget cell
under load lost the wake-up, 0 of 100 with nbclient's ``sync_state`` disabled, 0 of 100 with an HTML widget.
The drill-down now renders into an ``ipywidgets.HTML`` (state travels on IOPub only).

Detection below: the reply poll is cut into slices; a slice that returns the reply only when its deadline
fires had the reply waiting on the socket while it slept (a lost wake-up), which is what a stall is.
"""

from __future__ import annotations

import multiprocessing
import re
import time
from pathlib import Path
from queue import Empty

import pytest

papermill = pytest.importorskip("papermill")
from nbclient import NotebookClient  # noqa: E402
from papermill.iorw import load_notebook_node  # noqa: E402
from papermill.parameterize import parameterize_notebook  # noqa: E402

from workbench.mining.run import mine, offline_demo_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
RUNS = 20
SLICE_S = 5.0  # a reply poll slice; a lost wake-up costs one slice, not the whole cell timeout
CELL_TIMEOUT_S = 600


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _slice_reply_polls(channel, lost: list[float]) -> None:
    """Wrap ``channel.get_msg`` (what nbclient awaits for ``execute_reply``) to poll in slices and record
    every slice that got its message only when its deadline fired."""
    original = channel.get_msg

    async def get_msg(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE_S if deadline is None else min(SLICE_S, deadline - time.monotonic())
            if left <= 0:
                raise Empty
            start = time.monotonic()
            try:
                msg = await original(timeout=left)
            except Empty:
                continue  # nothing arrived in this slice: a slow cell, not a lost wake-up
            if time.monotonic() - start >= 0.98 * left:
                lost.append(time.monotonic() - start)
            return msg

    channel.get_msg = get_msg


@pytest.mark.slow
def test_notebook_03_runs_headless_20_times_under_load_without_a_stall(tmp_path):
    mined = tmp_path / "mined"
    mine(offline_demo_settings(mined, num_theorems=4, simulator_args=("--latency-scale", "0")))
    nb = parameterize_notebook(load_notebook_node(str(NOTEBOOKS / "03_depth_distribution.ipynb")),
                               {"inputs": [str(mined)]}, kernel_name="python3", language="python")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    load = [multiprocessing.Process(target=_busy, args=(900.0,), daemon=True) for _ in range(2)]
    for p in load:
        p.start()
    lost: list[float] = []
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    try:
        with client.setup_kernel():
            client.wait_for_reply(client.kc.kernel_info())
            _slice_reply_polls(client.kc.shell_channel, lost)
            for _ in range(RUNS):  # the whole notebook, again and again, in one kernel (no kernel start-ups)
                for index in code:
                    cell = client.execute_cell(nb.cells[index], index)
                    assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:200]
    finally:
        for p in load:
            p.terminate()
            p.join()
    assert lost == [], f"{len(lost)} execute_reply polls slept past a reply already waiting (the headless stall)"
    models = {state.get("_model_name") for state in client.widget_state.values()}
    assert "DropdownModel" in models and "HTMLModel" in models  # the drill-down widget ran
    assert "OutputModel" not in models  # the cause: nbclient answers an Output widget on the shell socket


def test_every_headless_execution_has_a_timeout():
    """`make demo` (papermill), `make test` (nbval), the README's papermill commands and the tests' notebook
    runs: each has a per-cell execution timeout, so a stall fails loudly instead of waiting forever."""
    makefile = (REPO / "Makefile").read_text()
    # the commands (`papermill --…`), not the lines that talk about papermill
    papermill_lines = [l for l in makefile.splitlines() if re.search(r"papermill --", l) and not l.lstrip().startswith("#")]
    assert papermill_lines and all("--execution-timeout" in l for l in papermill_lines)
    assert re.search(r"--nbval-lax.*\\\n.*--nbval-cell-timeout=", makefile) or "--nbval-cell-timeout" in makefile
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^\s*papermill [^\n]*", readme, flags=re.M)
    assert commands and all("--execution-timeout" in c for c in commands), commands
    for path in (REPO / "tests").rglob("*.py"):
        if path == REPO / "tests" / "conftest.py":
            assert 'kwargs.setdefault("execution_timeout"' in path.read_text()
            continue  # the fixture itself
        text = path.read_text()
        direct = re.findall(r"(?:papermill|pm)\.execute_notebook\(", text)
        assert not direct, f"{path}: run notebooks through the execute_notebook fixture (it sets execution_timeout)"
