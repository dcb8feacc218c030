"""Which drives a fleet run replays: ``--drives`` as a glob or a list file, and their ids.

A *list file* is a text file with one drive path per line (relative paths are relative to the
list file; blank lines and ``#`` comments are ignored). Anything else is a glob pattern
(``**`` recurses). A drive is what ``fusionrt run --source`` takes: a path an installed source
can open (a ROS 2 bag folder or file, a folder holding ``bag/``, a KITTI or nuScenes folder...;
:func:`fusionrt.runtime.source_select.can_open`).

A drive's *id* names its result files: its folder name (the file name without suffix for a bag
file), or, when two drives share a name, its path relative to the folder all drives have in
common, with ``/`` replaced by ``__``.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fusionrt.runtime.errors import ConfigError


@dataclass(frozen=True)
class DriveRef:
    """A drive to replay: its id (see the module docstring) and its absolute path."""

    drive: str
    path: Path


def installed_sources_open(kind: str | None = None) -> Callable[[Path], bool]:
    """Whether an installed source (the one named ``kind``) can open a path."""
    from fusionrt.runtime.registry import Registry  # noqa: PLC0415
    from fusionrt.runtime.source_select import can_open  # noqa: PLC0415

    registry = Registry.create()
    return lambda path: can_open(path, registry, kind)


def _from_list_file(list_file: Path) -> list[Path]:
    paths = []
    for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else list_file.parent / path
        if not path.exists():
            raise ConfigError("no drive at this path", file=str(list_file), line=number, path=entry)
        paths.append(path)
    return paths


def resolve_drives(spec: str, is_drive: Callable[[Path], bool] | None = None) -> list[DriveRef]:
    """The drives ``spec`` names (a list file or a glob), in sorted order, each once.

    ``is_drive`` tells the drives among a glob's matches (default: the paths an installed
    source can open)."""
    if is_drive is None:
        is_drive = installed_sources_open()
    candidate = Path(spec).expanduser()
    if candidate.is_file() and not is_drive(candidate):
        paths = _from_list_file(candidate)
        where = f"list file {candidate}"
    else:
        paths = [Path(p) for p in sorted(glob.glob(os.path.expanduser(spec), recursive=True))]
        paths = [p for p in paths if is_drive(p)]
        where = f"pattern {spec!r}"
    unique = sorted({p.resolve() for p in paths})
    if not unique:
        raise ConfigError(f"no drive matches the {where}", key="--drives")
    return drive_ids(unique)


def drive_ids(paths: list[Path]) -> list[DriveRef]:
    """Give each drive its id (see the module docstring)."""

    def name(path: Path) -> str:
        return path.stem if path.is_file() else path.name

    names = Counter(name(p) for p in paths)
    if all(count == 1 for count in names.values()):
        return [DriveRef(name(p), p) for p in paths]
    common = Path(os.path.commonpath([str(p) for p in paths]))
    return [DriveRef(p.relative_to(common).as_posix().replace("/", "__"), p) for p in paths]
