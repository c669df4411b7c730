"""Every notebook executed on small parameters, rendered as `make demo` renders it, and opened in headless
Chromium: the page loads, every figure the notebook made is an <img> the browser decoded, and the page
carries no machine path or progress-bar noise (issue 12, items 7 and 8). The browser part skips cleanly
when chromium/chromedriver or selenium are absent (`make test` installs them where it can)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")

from workbench.render import clean_notebook, render_report  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


def _params(name: str, runs: Path) -> dict:
    return {
        "01_group_traces": {"output_dir": str(runs / "01")},
        "02_mine_negatives": {"output": str(runs / "02"), "num_theorems": 6, "candidates_per_step": 4,
                              "simulator_latency_scale": 0.0, "lean": "simulated", "progress": False},
        "03_depth_distribution": {"inputs": [str(runs / "02")]},
        "04_train_ebm": {"steps": 20, "eval_every": 10, "batch_size": 16, "d_hidden": [32, 16, 8],
                         "output_dir": str(runs / "04")},
    }[name]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, execute_notebook) -> dict[str, tuple[Path, int]]:
    """notebook name -> (HTML report, number of figures in the executed notebook)."""
    tmp = tmp_path_factory.mktemp("reports")
    out = {}
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        executed = tmp / nb.name
        execute_notebook(nb, executed, cwd=str(NOTEBOOKS), parameters=_params(nb.stem, tmp / "runs"))
        cells = json.loads(executed.read_text())["cells"]
        figures = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
        out[nb.stem] = (render_report(executed, tmp / f"{nb.stem}.html", REPO), figures)
    return out


def test_rendered_reports_carry_no_machine_paths_metadata_or_bars(rendered):
    import sys

    for name, (html, figures) in rendered.items():
        text = html.read_text()
        assert figures > 0, f"{name}: no figure at all"
        for secret in {str(REPO), sys.prefix, str(Path.home())} - {"/", ""}:
            assert secret not in text, f"{name}: machine path {secret} in the report"
        assert "IProgress not found" not in text, name
        # no papermill metadata: the only mentions left are the ones the notebook's own cells write
        written = sum(c["source"].lower().count("papermill") if isinstance(c["source"], str)
                      else "".join(c["source"]).lower().count("papermill")
                      for c in json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"])
        assert text.lower().count("papermill") <= written, name


def test_rendered_reports_load_no_remote_script(rendered):
    """A report opens offline: nbconvert's lab template would load require.js, MathJax and mermaid from
    cdnjs.cloudflare.com with blocking ``<script src>`` tags (the page then sits in readyState "loading"
    on a machine without internet, main's CI run)."""
    for name, (html, _) in rendered.items():
        text = html.read_text()
        tags = re.findall(r"<script\b[^>]*>", text, flags=re.I)
        remote = [t for t in tags if re.search(r"\bsrc\s*=\s*[\"']?(?:https?:)?//", t, flags=re.I)]
        assert remote == [], f"{name}: {remote}"
        assert not re.search(r"import\(\s*[\"']https?://", text), f"{name}: a script imports a remote module"
        assert "cdnjs.cloudflare.com" not in text, name


def test_clean_notebook_scrubs_paths_and_drops_bars():
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"papermill": {"duration": 3.2}})
    cell = nbformat.v4.new_code_cell("x", metadata={"papermill": {"duration": 1.0}, "execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"}})
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="mining:  40%|████      | 4/10 [00:01<00:02,  3.1thm/s]\r"),
        nbformat.v4.new_output("stream", name="stdout", text=f"output: {REPO}/notebooks/runs/x\n"),
        nbformat.v4.new_output("stream", name="stderr", text="WARNING something real\n"),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "1"},
                                                     "text/plain": "train:  10%|#  | 2/20"}),
    ]
    cell.execution_count = 1
    nb.cells.append(cell)
    clean_notebook(nb, REPO)
    assert "papermill" not in nb.metadata and not cell.metadata
    assert [o["text"] for o in cell.outputs] == ["output: <repo>/notebooks/runs/x\n", "WARNING something real\n"]
    # log lines (stderr) are shown as text, not in the error colour nbconvert gives stderr (issue 24, item 6)
    assert {o["name"] for o in cell.outputs} == {"stdout"}
    assert nb.cells == [cell]  # it ran to its end: no banner


def test_a_report_of_an_unfinished_notebook_says_so_first():
    import nbformat

    def notebook(*cells):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("# title"), *cells]
        return nb

    ran = nbformat.v4.new_code_cell("x = 1", execution_count=1)
    failed = nbformat.v4.new_code_cell("mine()", execution_count=2)
    failed.outputs = [nbformat.v4.new_output("error", ename="FileNotFoundError", evalue="no mining output in runs/x",
                                             traceback=[])]
    never = nbformat.v4.new_code_cell("plot()")
    nb = clean_notebook(notebook(ran, failed, never))
    assert nb.cells[0].cell_type == "markdown" and "UNFINISHED NOTEBOOK" in nb.cells[0].source
    assert "error in cell 3 (FileNotFoundError: no mining output in runs/x)" in nb.cells[0].source
    interrupted = clean_notebook(notebook(ran, nbformat.v4.new_code_cell("mine()"), never))
    assert "cells 3-4 did not run (2 of 3 code cells)" in interrupted.cells[0].source
    again = clean_notebook(interrupted)  # rendering twice keeps one banner
    assert sum("UNFINISHED" in c.source for c in again.cells) == 1
    assert clean_notebook(notebook(ran)).cells[0].source == "# title"


def test_make_demo_says_the_kernel_tcp_warning_once():
    """ipykernel warns at each kernel start; `make demo` starts four kernels (issue 24, item 6)."""
    import inspect
    import re

    import ipykernel.kernelapp

    makefile = (REPO / "Makefile").read_text()
    warning = re.search(r"^KERNEL_TCP_WARNING := (.+)$", makefile, flags=re.M).group(1)
    assert warning in inspect.getsource(ipykernel.kernelapp)  # the very text ipykernel logs
    assert '2> >(grep -v -F "$(KERNEL_TCP_WARNING)" >&2)' in makefile  # filtered from each kernel's stderr
    assert re.search(r"^SHELL\s*:= /bin/bash", makefile, flags=re.M)  # process substitution needs bash
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert demo.count("TCP") == 1  # said once, up front


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("headless Chromium not installed (make test installs chromium + chromium-driver where it can)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_each_report_renders_in_headless_chromium_with_every_figure(rendered):
    browser = _browser()
    from selenium.webdriver.support.wait import WebDriverWait

    try:
        for name, (html, figures) in rendered.items():
            browser.get(html.as_uri())
            # a condition wait: the page has no remote script, so "complete" comes once the file is parsed
            WebDriverWait(browser, 60).until(lambda b: b.execute_script("return document.readyState") == "complete",
                                             f"{name}: document.readyState never reached 'complete'")
            images = browser.execute_script(
                "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            decoded = [img for img in images if img[0] and img[1] > 0 and img[2] > 0]
            assert len(images) == figures and len(decoded) == figures, f"{name}: {images} vs {figures} figures"
            body = browser.execute_script("return document.body.innerText")
            assert "Traceback" not in body, name
            assert browser.find_elements("css selector", ".jp-Notebook, body"), name
            # log lines are plain text, never the pink stderr box (issue 24, item 6)
            assert not browser.find_elements("css selector", "[data-mime-type='application/vnd.jupyter.stderr']"), name
            outputs = browser.execute_script(
                "return Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText).join('\\n')")
            assert "\\n" not in outputs, f"{name}: a literal \\n in an output"
            if name == "01_group_traces":
                assert "HAND-WRITTEN sample" in body
            if name == "02_mine_negatives":
                assert re.search(r"progress: 6/6 theorems, \d+/h, .*SIMULATED Lean", body)  # the log line, as text
                assert "SIMULATED Lean, latencies x 0: not a real-Lean rate" in body
            if name == "03_depth_distribution":
                assert "Names Lean still does not know" in body and "Every tactic sent" in body
                boxes = browser.execute_script(
                    "return Array.from(document.querySelectorAll('div')).filter(d => d.style.overflow == 'auto').length")
                assert boxes >= 3  # the drill-down's tables and tree scroll inside bounded boxes
    finally:
        browser.quit()


def test_everything_make_demo_writes_is_ignored_by_git():
    """`make demo` writes reports/*.{ipynb,html} and notebooks/runs/demo/**: none may dirty `git status`."""
    import re
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^\trm -rf notebooks/\$\(DEMO_RUNS\)$", makefile, flags=re.M), "demo starts from a fresh folder"
    written = ["reports/02_mine_negatives.html", "reports/02_mine_negatives.ipynb",
               "notebooks/runs/demo/02/part-00000.parquet", "notebooks/runs/mine/x/identity.json"]
    r = subprocess.run(["git", "check-ignore", *written], cwd=REPO, capture_output=True, text=True)
    assert r.stdout.split() == written
    tracked = subprocess.run(["git", "ls-files", "reports"], cwd=REPO, capture_output=True, text=True).stdout
    assert tracked.split() == ["reports/README.md"]  # only the page saying what `make demo` renders there
