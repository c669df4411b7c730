"""Refusing to overwrite finished work: one check shared by the commands that write an output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

__all__ = ["refuse_existing"]


def refuse_existing(path: str | Path, artefacts: Sequence[str], *, what: str, overwrite: bool,
                    resume: bool = False) -> None:
    """Raise FileExistsError when ``path`` is a file, or already holds ``artefacts`` and neither flag allows it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, but {what} writes a folder there: give a folder path")
    if overwrite or resume:
        return
    found = [a for a in artefacts if (path / a).exists()]
    if found:
        raise FileExistsError(f"{path} already holds {what} ({', '.join(found)}): pass --overwrite to replace it"
                              + (" or --resume to continue it" if what == "a train-ebm run" else ""))
