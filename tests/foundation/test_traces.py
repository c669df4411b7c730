import json

import pytest

from workbench.traces import (
    TraceError,
    load_traces,
    select_theorems,
    split_by_theorem,
    write_tactic_pairs,
    write_theorem_index,
)


def _entry(name, tactics, **extra):
    steps = []
    for i, tac in enumerate(tactics):
        after = "no goals" if i == len(tactics) - 1 else f"⊢ s{i + 1}"
        steps.append({"tactic": tac, "annotated_tactic": [tac, []], "state_before": f"⊢ s{i}", "state_after": after})
    return {"url": "u", "commit": "c", "file_path": f"F/{name}.lean", "full_name": name, "start": [1, 1], "end": [2, 1],
            "traced_tactics": steps, **extra}


@pytest.fixture
def leandojo_file(tmp_path):
    entries = [
        _entry("Nat.a", ["intro n", "simp"]),
        _entry("Nat.term", []),
        _entry("stub", ["sorry"]),
        _entry("List.b", ["rfl"], theorem_statement="theorem List.b : [] = [] := by"),
        _entry("c", ["intro x", "exact x", "rfl"]),
        _entry("Nat.a", ["rfl"]),  # duplicate name
    ]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(entries))
    return path


def test_leandojo_grouping_counts_every_drop(leandojo_file):
    ts = load_traces(leandojo_file)
    assert [t.full_name for t in ts.theorems] == ["Nat.a", "List.b", "c"]
    assert ts.dropped == {"term_mode": 1, "sorry_stub": 1, "duplicate_name": 1}
    assert ts.theorems[1].statement == "theorem List.b : [] = [] := by"
    assert ts.theorems[0].file_path == "F/Nat.a.lean"
    assert [s.depth for s in ts.theorems[2].steps] == [0, 1, 2]
    assert ts.theorems[2].steps[-1].state_after == "no goals"


def test_min_steps_and_sampling_is_seeded(leandojo_file):
    ts = load_traces(leandojo_file, min_steps=2)
    assert [t.full_name for t in ts.theorems] == ["Nat.a", "c"]
    assert ts.dropped["below_min_steps"] == 1
    a = load_traces(leandojo_file, num_theorems=2, seed=7)
    b = load_traces(leandojo_file, num_theorems=2, seed=7)
    assert [t.full_name for t in a.theorems] == [t.full_name for t in b.theorems]
    assert a.not_sampled == 1


@pytest.mark.parametrize("min_steps", [1, 2, 3])
@pytest.mark.parametrize("num_theorems", [None, 1, 2])
def test_selecting_from_a_full_load_equals_a_restricted_load(leandojo_file, min_steps, num_theorems):
    direct = load_traces(leandojo_file, min_steps=min_steps, num_theorems=num_theorems, seed=7)
    selected = select_theorems(load_traces(leandojo_file), min_steps=min_steps, num_theorems=num_theorems, seed=7)
    assert selected.theorems == direct.theorems and selected.summary() == direct.summary()


def test_folder_with_random_splits(tmp_path):
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "val.json").write_text(json.dumps([_entry("A.x", ["simp"])]))
    (tmp_path / "random" / "test.json").write_text(json.dumps([_entry("B.y", ["simp"])]))
    assert sorted(t.full_name for t in load_traces(tmp_path).theorems) == ["A.x", "B.y"]


def _pairs_file(tmp_path, lines):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines))
    return path


def test_tactic_pairs_jsonl(tmp_path):
    path = _pairs_file(tmp_path, [
        {"state": "⊢ b", "tactic": "t1", "theorem": "T", "depth": 1, "source": "x"},
        {"state": "⊢ a", "tactic": "t0", "theorem": "T", "depth": 0},
        {"state": "⊢ a", "tactic": "t0", "theorem": "Gap", "depth": 0},
        {"state": "⊢ c", "tactic": "t2", "theorem": "Gap", "depth": 2},
    ])
    ts = load_traces(path)
    assert [t.full_name for t in ts.theorems] == ["T"]
    thm = ts.theorems[0]
    assert [s.tactic for s in thm.steps] == ["t0", "t1"]
    assert thm.steps[1].extra == {"source": "x"}
    assert thm.steps[0].state_after == "⊢ b" and thm.steps[1].state_after == "no goals"
    assert ts.dropped == {"noncontiguous_depths": 1}


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"state": "s", "tactic": "t", "theorem": "T"}', "line 2: missing field 'depth'"),
        ('{"state": "s", "tactic": "t", "theorem": "T", "depth": "0"}', "line 2: field 'depth' should be int"),
        ('{"state": "s", "tactic": "t", "theorem": 3, "depth": 0}', "line 2: field 'theorem' should be str"),
        ('{"state": "s", "tactic": ', "line 2: malformed JSON"),
        ('[1]', "line 2: expected an object"),
    ],
)
def test_bad_jsonl_line_is_named(tmp_path, line, message):
    good = {"state": "⊢ a", "tactic": "t0", "theorem": "T", "depth": 0}
    path = _pairs_file(tmp_path, [good, line])
    with pytest.raises(TraceError, match=message):
        load_traces(path)
    ts = load_traces(path, skip_bad=True)
    assert ts.bad_records == 1 and len(ts.theorems) == 1


def test_bad_json_entry_is_named(tmp_path):
    bad = _entry("B", ["simp"])
    del bad["traced_tactics"][0]["state_before"]
    path = tmp_path / "t.json"
    path.write_text(json.dumps([_entry("A", ["simp"]), bad]))
    with pytest.raises(TraceError, match=r"entry 1 \(B\), traced_tactics\[0\]: missing field 'state_before'"):
        load_traces(path)
    assert load_traces(path, skip_bad=True).bad_records == 1


def test_clear_errors_for_empty_missing_and_wrong_type(tmp_path):
    empty = tmp_path / "e.json"
    empty.write_text("  \n")
    with pytest.raises(TraceError, match="empty"):
        load_traces(empty)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_traces(tmp_path / "missing.json")
    obj = tmp_path / "o.json"
    obj.write_text('{"full_name": "x"}')
    with pytest.raises(TraceError, match="expected a JSON list"):
        load_traces(obj)
    truncated = tmp_path / "t.json"
    truncated.write_text(json.dumps([_entry("A", ["simp"])])[:-20])
    with pytest.raises(TraceError, match="malformed JSON"):
        load_traces(truncated)


def test_split_by_theorem_never_splits_a_theorem(shared_traces_dir, tmp_path):
    ts = load_traces(shared_traces_dir)
    train, val = split_by_theorem(ts.theorems, 0.2, seed=3)
    assert {t.full_name for t in train}.isdisjoint({t.full_name for t in val})
    assert len(train) + len(val) == len(ts.theorems) == 1855
    assert split_by_theorem(ts.theorems, 0.2, seed=3)[1] == val
    n = write_tactic_pairs(val, tmp_path / "val.jsonl")
    assert n == sum(len(t.steps) for t in val)
    back = load_traces(tmp_path / "val.jsonl")
    assert [t.full_name for t in back.theorems] == [t.full_name for t in val]
    assert back.theorems[0].steps == val[0].steps
    write_theorem_index(val, tmp_path / "idx.json")
    idx = json.loads((tmp_path / "idx.json").read_text())["theorems"]
    assert idx[0] == {"name": val[0].full_name, "statement": val[0].first_state}


def test_real_sample_counts(shared_traces_dir):
    ts = load_traces(shared_traces_dir)
    assert len(ts.theorems) == 1855 and ts.num_steps == 5877
    assert ts.dropped == {"term_mode": 2127, "sorry_stub": 18}
