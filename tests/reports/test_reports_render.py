"""Every notebook executed on small parameters, rendered as `make demo` renders it, and opened in headless
Chromium: the page loads, every figure the notebook made is an <img> the browser decoded, and the page
carries no machine path or progress-bar noise (issue 12, items 7 and 8). The browser part skips cleanly
when chromium/chromedriver or selenium are absent (`make test` installs them where it can)."""

from __future__ import annotations

import json
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
        "03_depth_distribution": {"inputs": [str(runs / "02")], "demo_if_missing": False},
        "04_train_ebm": {"steps": 20, "eval_every": 10, "batch_size": 16, "d_hidden": [32, 16, 8],
                         "output_dir": str(runs / "04")},
    }[name]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, tuple[Path, int]]:
    """notebook name -> (HTML report, number of figures in the executed notebook)."""
    tmp = tmp_path_factory.mktemp("reports")
    out = {}
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        executed = tmp / nb.name
        papermill.execute_notebook(str(nb), str(executed), cwd=str(NOTEBOOKS), kernel_name="python3",
                                   parameters=_params(nb.stem, tmp / "runs"), progress_bar=False)
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
        assert "papermill" not in text.lower() or "papermill --help-notebook" in text, name


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
    nb.cells.append(cell)
    clean_notebook(nb, REPO)
    assert "papermill" not in nb.metadata and not cell.metadata
    assert [o["text"] for o in cell.outputs] == ["output: <repo>/notebooks/runs/x\n", "WARNING something real\n"]


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


def test_rendered_reports_load_no_remote_script(rendered):
    """A report opens offline: nbconvert's template fetched require.js/MathJax from cdnjs (CI stalled on it)."""
    import re

    for name, (html, _) in rendered.items():
        text = html.read_text()
        assert not re.search(r"<script[^>]*src=[\"']https?://", text), name
        assert "cdnjs.cloudflare.com" not in text, name


def test_each_report_renders_in_headless_chromium_with_every_figure(rendered):
    browser = _browser()
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        for name, (html, figures) in rendered.items():
            browser.get(html.as_uri())
            WebDriverWait(browser, 60).until(lambda b: b.execute_script("return document.readyState") == "complete")
            images = browser.execute_script(
                "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            decoded = [img for img in images if img[0] and img[1] > 0 and img[2] > 0]
            assert len(images) == figures and len(decoded) == figures, f"{name}: {images} vs {figures} figures"
            body = browser.execute_script("return document.body.innerText")
            assert "Traceback" not in body, name
            assert browser.find_elements("css selector", ".jp-Notebook, body"), name
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
