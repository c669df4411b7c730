"""Every notebook parameter is typed and visible to `papermill --help-notebook` (issue 12, item 3).

papermill (2.7, translators.PythonTranslator.inspect) skips any parameter line with more than one ``=``
and reads ``name: type = value  # help``; a hidden parameter is then injected with the warning
"Passed unknown parameter".
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("papermill")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def parameters_cell(nb_path: Path) -> str:
    cells = [c for c in json.loads(nb_path.read_text())["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{nb_path.name}: exactly one cell tagged 'parameters'"
    return "".join(cells[0]["source"])


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_help_notebook_lists_every_parameter_with_type_and_help(nb_path):
    tree = ast.parse(parameters_cell(nb_path))
    untyped = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Assign)]
    assert not untyped, f"{nb_path.name}: parameters without a type annotation: {untyped}"
    names = [n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)]
    assert names, nb_path.name
    r = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(nb_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Unable to parse" not in r.stderr + r.stdout
    listed = dict(re.findall(r"^  (\w+): (\S+) \(default", r.stdout, flags=re.M))
    assert list(listed) == names, f"{nb_path.name}: --help-notebook lists {list(listed)}, the cell defines {names}"
    assert "None" not in listed.values(), f"{nb_path.name}: a parameter without an inferred type: {listed}"
    import papermill

    helps = {k: v["help"] for k, v in papermill.inspect_notebook(str(nb_path)).items()}
    assert all(helps.values()), f"{nb_path.name}: parameters without help: {[k for k, v in helps.items() if not v]}"
