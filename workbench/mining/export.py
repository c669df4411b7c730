"""One file from a mining run folder (``workbench export``, ``--output NAME.parquet``).

A run folder holds trajectory parts next to its manifest, attempts log and status lines, which is what
resume needs; analysis tools that want one file (``pd.read_parquet("negatives.parquet")``) get it here.
Only what the manifest lists is exported: a part a kill left unsealed (or a stray copy) is not a result.
Parquet carries the run's provenance (simulated flag included) as key-value metadata, like every part
does; CSV (``.csv``) carries the columns only (``simulated`` is one of them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from workbench.trajectory import FORMAT, MANIFEST, METADATA_KEY, TRAJECTORY_SCHEMA

__all__ = ["RUN_SUFFIX", "EXPORT_FORMATS", "split_output", "export_records", "sealed_parts"]

RUN_SUFFIX = ".run"  # `--output x.parquet` mines into the folder `x.parquet.run`, then writes x.parquet
EXPORT_FORMATS = (".parquet", ".csv")


def split_output(output: str | Path) -> tuple[Path, Path | None]:
    """(run folder, single-file target or None) for an ``--output`` value."""
    path = Path(output)
    if path.suffix == ".parquet":
        return path.with_name(path.name + RUN_SUFFIX), path
    return path, None


def sealed_parts(run_folder: Path) -> tuple[list[Path], dict]:
    """(the trajectory parts ``manifest.json`` lists, the run's metadata); refuses a folder that is no run."""
    manifest = run_folder / MANIFEST
    if not run_folder.is_dir():
        raise FileNotFoundError(f"{run_folder}: no such run folder")
    try:
        raw = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{run_folder}: not a mining run folder (no {MANIFEST}); nothing to export") from None
    except ValueError as e:
        raise ValueError(f"{manifest}: not a readable manifest ({e})") from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("parts"), list):
        raise ValueError(f"{manifest}: not a trajectory manifest (field 'format' is {raw.get('format')!r}, "
                         f"expected {FORMAT!r})" if isinstance(raw, dict) else f"{manifest}: not a JSON object")
    parts = [run_folder / p["file"] for p in raw["parts"]]
    missing = [p.name for p in parts if not p.exists()]
    if missing:
        raise ValueError(f"{manifest}: lists parts that are gone: {missing[:5]}")
    return parts, raw.get("metadata") or {}


def export_format(target: Path) -> str:
    suffix = target.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValueError(f"{target}: cannot tell the format from {suffix or 'no suffix'!r}; name the file "
                         f"{' or '.join('*' + s for s in EXPORT_FORMATS)}")
    return suffix


def export_records(run_folder: str | Path, target: str | Path, *, overwrite: bool = False) -> Path:
    """Every sealed trajectory record of ``run_folder`` into ``target`` (Parquet or CSV by its suffix,
    written atomically). Refuses a target inside the run folder, and an existing one unless ``overwrite``."""
    run_folder, target = Path(run_folder), Path(target)
    fmt = export_format(target)
    if target.resolve().is_relative_to(run_folder.resolve()):
        raise ValueError(f"{target} is inside the run folder {run_folder}: export somewhere else (the folder's "
                         "files are the run's own)")
    parts, metadata = sealed_parts(run_folder)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists: pass --overwrite to replace it")
    if target.is_dir():
        raise FileExistsError(f"{target} is a folder; the export is one file")
    tables = [pq.read_table(p) for p in parts]
    table = pa.concat_tables(tables) if tables else TRAJECTORY_SCHEMA.empty_table()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    if fmt == ".csv":
        pacsv.write_csv(table, tmp)
    else:
        schema_metadata = dict(table.schema.metadata or {})
        schema_metadata[METADATA_KEY] = json.dumps(metadata, default=str).encode()
        pq.write_table(table.replace_schema_metadata(schema_metadata), tmp)
    os.replace(tmp, target)
    return target


# --- `workbench export RUN_FOLDER OUT.parquet|OUT.csv` ------------------------------------------------


def configure(parser) -> None:  # argparse.ArgumentParser
    parser.add_argument("run_folder", help="a `workbench mine` output folder")
    parser.add_argument("target", help="the one file to write: NAME.parquet (pd.read_parquet reads it; carries the "
                        "run's provenance) or NAME.csv")
    parser.add_argument("--overwrite", action="store_true", help="replace the target if it exists")


def run(args) -> int:
    target = export_records(args.run_folder, args.target, overwrite=args.overwrite)
    rows = sum(pq.read_metadata(p).num_rows for p in sealed_parts(Path(args.run_folder))[0])
    print(f"{rows} records -> {target}")
    return 0
