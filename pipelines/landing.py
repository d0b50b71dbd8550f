"""The landing folder surveyed: every path under it, to be read or not, and why not.

The landing protocol (docs/contract.md): a file is read once it is complete, which the pipeline
takes to mean that nothing has written to it for the quiet period (``config.quiet_seconds``) and
that its name is not a temporary one (``*.part``, ``*.tmp``…); writers that can should write under
a temporary name and rename. Hidden entries, links leading outside the landing folder, dangling
links, linked folders, FIFOs and files outside ``<landing>/<kind>/`` are never opened; each is
recorded once in ``ops.ingested_files`` with status ``skipped`` and a ``skip_reason``. Names are
taken literally: nothing is expanded as a pattern. Nothing here touches the warehouse.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from pipelines import contract

# Names writers give a file while it is written (browsers, rsync, editors, our own contract).
TEMPORARY_ENDINGS = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".swp", "~")
# Why a path under the landing folder is not read (ops.ingested_files.skip_reason).
SKIP_REASONS = {
    "hidden_file": "its name starts with a dot",
    "hidden_folder": "a folder whose name starts with a dot (not looked into)",
    "temporary_file": "a temporary name: the file is still being written ("
    + ", ".join(f"*{ending}" for ending in TEMPORARY_ENDINGS)
    + ")",
    "broken_link": "a link whose target does not exist",
    "outside_landing": "a link leading outside the landing folder",
    "linked_folder": "a link to a folder (not looked into)",
    "not_a_regular_file": "a FIFO, socket or device",
    "not_in_a_kind_folder": "outside the folders transmissions/, enrollments/, prescriptions/, "
    "payments/",
    "unsupported": "a file type the pipeline does not read",
    "undecodable_name": "a name that is not UTF-8 (shown with \\x escapes)",
    "unreadable_folder": "a folder the pipeline is not allowed to list",
}


@dataclass(frozen=True)
class LandingFile:
    """One path under the landing folder, as surveyed."""

    kind: str | None  # None: outside every kind folder
    path: Path  # the path to open: the link's target when the path is a link inside the landing
    relpath: str  # as found, relative to the landing folder
    fmt: str | None
    size: int
    mtime_ns: int
    # status-change time: any write to the file moves it and no tool can set it back, so a file
    # rewritten with the same size and a restored mtime still fails the path+size+times shortcut
    ctime_ns: int
    skip_reason: str | None = None
    deferred: bool = False  # written to less than the quiet period ago: read by a later run

    @property
    def to_read(self) -> bool:
        return self.skip_reason is None and not self.deferred

    @property
    def signature(self) -> tuple[str, int, int, int]:
        return (self.relpath, self.size, self.mtime_ns, self.ctime_ns)


def survey(
    landing: Path, quiet_seconds: float = 0.0, now_ns: int | None = None
) -> list[LandingFile]:
    """Every path under ``landing`` (links not followed, folders not entered twice), in arrival
    order: by modification time, then path (rules.md R7b: a version sent later wins a tie, never
    by its path alone)."""
    landing = Path(landing)
    if not landing.is_dir():
        return []
    now_ns = time.time_ns() if now_ns is None else now_ns
    quiet_after = now_ns - int(quiet_seconds * 1e9)
    root = os.path.realpath(landing)
    found = []
    for entry, kind in _walk(landing, None, top=True):
        try:
            surveyed = _surveyed(entry, kind, landing, root)
        except FileNotFoundError:
            continue  # renamed or removed since it was listed (a `.part` renamed): not there
        # deferred while both its modification and status-change times are recent: a file still
        # being written moves both; one whose modification time was set in the future (a clock
        # ahead, `touch -d`) waits only until its last change is quiet
        last_write = min(surveyed.mtime_ns, surveyed.ctime_ns)
        if surveyed.skip_reason is None and last_write > quiet_after:
            surveyed = replace(surveyed, deferred=True)
        found.append(surveyed)
    return sorted(found, key=lambda f: (f.mtime_ns, f.relpath))


def _walk(
    folder: Path, kind: str | None, top: bool = False
) -> Iterator[tuple[os.DirEntry, str | None]]:
    """The entries under ``folder``; kind folders give their kind to what they hold. Hidden
    folders, links and folders that cannot be listed are yielded, not entered."""
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            is_folder = entry.is_dir(follow_symlinks=False)
            if (
                is_folder
                and not entry.name.startswith(".")
                and os.access(entry.path, os.R_OK | os.X_OK)
            ):
                inner = entry.name if top and entry.name in contract.KINDS else kind
                yield from _walk(Path(entry.path), inner)
            else:
                yield entry, kind


def _surveyed(entry: os.DirEntry, kind: str | None, landing: Path, root: str) -> LandingFile:
    path = Path(entry.path)
    relpath = path.relative_to(landing).as_posix()
    lstat = entry.stat(follow_symlinks=False)
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 (a Windows archive): kept visible
        relpath = os.fsencode(relpath).decode("utf-8", "backslashreplace")
        return LandingFile(
            kind, path, relpath, None, lstat.st_size, lstat.st_mtime_ns, lstat.st_ctime_ns,
            skip_reason="undecodable_name",
        )  # fmt: skip

    def skipped(reason: str, info: os.stat_result = lstat) -> LandingFile:
        return LandingFile(
            kind,
            path,
            relpath,
            contract.format_of(entry.name),
            info.st_size,
            info.st_mtime_ns,
            info.st_ctime_ns,
            skip_reason=reason,
        )

    if entry.name.startswith("."):
        return skipped("hidden_folder" if stat.S_ISDIR(lstat.st_mode) else "hidden_file")
    if stat.S_ISDIR(lstat.st_mode):  # a folder the pipeline may not list
        return skipped("unreadable_folder")
    target, info = path, lstat
    if stat.S_ISLNK(lstat.st_mode):
        real = os.path.realpath(path)
        if not os.path.exists(real):
            return skipped("broken_link")
        if os.path.commonpath([root, real]) != root:
            return skipped("outside_landing")
        target, info = Path(real), os.stat(real)
        if stat.S_ISDIR(info.st_mode):
            return skipped("linked_folder")
    if not stat.S_ISREG(info.st_mode):
        return skipped("not_a_regular_file", info)
    lowered = entry.name.lower()
    if lowered.endswith(TEMPORARY_ENDINGS):
        return skipped("temporary_file", info)
    if kind is None:
        return skipped("not_in_a_kind_folder", info)
    if contract.format_of(entry.name) is None:
        return skipped("unsupported", info)
    return LandingFile(
        kind,
        target,
        relpath,
        contract.format_of(entry.name),
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
    )


class ChangedWhileRead(OSError):
    """The file's size or modification time moved between the survey and the end of the read."""


def read_bytes(f: LandingFile) -> bytes:
    """The file's bytes, opened without blocking (a FIFO swapped in since the survey is refused,
    not waited on) and checked against the survey: a file written to meanwhile raises
    ``ChangedWhileRead`` and is deferred to a later run."""
    fd = os.open(f.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise OSError(f"{f.relpath} is no longer a regular file")
        data = handle.read()
        after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (f.size, f.mtime_ns) or len(data) != f.size:
        raise ChangedWhileRead(f"{f.relpath} changed while it was read")
    return data
