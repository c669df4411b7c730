"""One Parquet file from a mining run folder (``workbench export``, ``--output NAME.parquet``).

A run folder holds trajectory parts next to its manifest, attempts log and status lines, which is what
resume needs; analysis tools that want one file (``pd.read_parquet("negatives.parquet")``) get it here.
The file carries the run's provenance (simulated flag included) as Parquet key-value metadata, like
every part does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.trajectory import METADATA_KEY, read_metadata

__all__ = ["RUN_SUFFIX", "split_output", "export_records"]

RUN_SUFFIX = ".run"  # `--output x.parquet` mines into the folder `x.parquet.run`, then writes x.parquet


def split_output(output: str | Path) -> tuple[Path, Path | None]:
    """(run folder, single-file target or None) for an ``--output`` value."""
    path = Path(output)
    if path.suffix == ".parquet":
        return path.with_name(path.name + RUN_SUFFIX), path
    return path, None


def export_records(run_folder: str | Path, target: str | Path) -> Path:
    """Every trajectory record of ``run_folder`` into ``target`` (written atomically)."""
    run_folder, target = Path(run_folder), Path(target)
    parts = sorted(run_folder.glob("part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"{run_folder}: no trajectory parts (part-*.parquet) to export")
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    metadata = dict(table.schema.metadata or {})
    metadata[METADATA_KEY] = json.dumps(read_metadata(run_folder), default=str).encode()
    table = table.replace_schema_metadata(metadata)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, target)
    return target


# --- `workbench export RUN_FOLDER OUT.parquet` ----------------------------------------------------


def configure(parser) -> None:  # argparse.ArgumentParser
    parser.add_argument("run_folder", help="a `workbench mine` output folder")
    parser.add_argument("target", help="the single Parquet file to write (pd.read_parquet reads it)")


def run(args) -> int:
    target = export_records(args.run_folder, args.target)
    rows = pq.read_metadata(target).num_rows
    print(f"{rows} records -> {target}")
    return 0
