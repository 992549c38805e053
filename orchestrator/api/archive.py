"""Uploaded workspace archives (.zip, .tar.gz) unpacked safely: relative regular files and directories only."""

from __future__ import annotations

import io
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from orchestrator.errors import InputError

__all__ = ["ArchiveLimits", "unpack_archive", "unpacked", "read_capped"]


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on an uploaded archive: its own size, the unpacked total and the number of entries."""

    max_upload_bytes: int = 50_000_000
    max_total_bytes: int = 200_000_000
    max_files: int = 2_000


def read_capped(stream: BinaryIO, limit: int) -> bytes:
    """Read the whole upload, refusing it as soon as it exceeds ``limit`` bytes."""
    buf = io.BytesIO()
    while chunk := stream.read(1 << 20):
        buf.write(chunk)
        if buf.tell() > limit:
            raise InputError(f"the archive is larger than the {limit} byte limit")
    return buf.getvalue()


def _safe_name(name: str) -> PurePosixPath | None:
    """The entry's relative path, None for the archive root; refuses absolute paths and ``..``."""
    if "\x00" in name or "\\" in name:
        raise InputError(f"archive entry {name!r} has a NUL byte or backslash and is refused")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/") or (path.parts and path.parts[0].endswith(":")):
        raise InputError(f"archive entry {name!r} is an absolute path and is refused")
    if ".." in path.parts:
        raise InputError(f"archive entry {name!r} leaves the workspace ('..') and is refused")
    parts = [part for part in path.parts if part not in (".", "")]
    return PurePosixPath(*parts) if parts else None


class _Budget:
    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits, self.files, self.total = limits, 0, 0

    def take(self, size: int) -> None:
        self.files += 1
        self.total += max(size, 0)
        if self.files > self.limits.max_files:
            raise InputError(f"the archive has more than {self.limits.max_files} entries")
        if self.total > self.limits.max_total_bytes:
            raise InputError(f"the archive unpacks to more than {self.limits.max_total_bytes} bytes")


def _write(target: Path, rel: PurePosixPath, source: BinaryIO, budget: _Budget) -> None:
    out = target.joinpath(*rel.parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with out.open("xb") as handle:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            if budget.total + written > budget.limits.max_total_bytes:
                raise InputError(f"the archive unpacks to more than {budget.limits.max_total_bytes} bytes")
            handle.write(chunk)
    budget.total += written


def _unzip(data: bytes, target: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            rel = _safe_name(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip was not made on Unix
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise InputError(f"archive entry {info.filename!r} is a link or device and is refused")
            budget.take(0)
            if rel is None or info.is_dir():
                if rel is not None:
                    target.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True)
                continue
            with archive.open(info) as source:  # sizes are counted as read: headers can lie
                _write(target, rel, source, budget)


def _untar(data: bytes, target: Path, budget: _Budget) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for member in archive:
            rel = _safe_name(member.name)
            if not (member.isfile() or member.isdir()):
                raise InputError(f"archive entry {member.name!r} is a link or device and is refused")
            budget.take(0)
            if rel is None or member.isdir():
                if rel is not None:
                    target.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True)
                continue
            source = archive.extractfile(member)
            if source is None:
                raise InputError(f"archive entry {member.name!r} cannot be read")
            with source:
                _write(target, rel, source, budget)


def unpack_archive(data: bytes, filename: str, target: Path, limits: ArchiveLimits = ArchiveLimits()) -> None:
    """Unpack ``data`` (named ``filename``) into the new directory ``target``; nothing is left on refusal."""
    name = filename.lower()
    target.mkdir(parents=True, exist_ok=False)
    budget = _Budget(limits)
    try:
        if name.endswith(".zip"):
            _unzip(data, target, budget)
        elif name.endswith((".tar.gz", ".tgz")):
            _untar(data, target, budget)
        else:
            raise InputError(f"archive {filename!r} is not a .zip or .tar.gz")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise InputError(f"archive {filename!r} cannot be unpacked: {exc}") from None
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


@contextmanager
def unpacked(data: bytes, filename: str, target: Path, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[Path]:
    """Unpack into ``target`` for the block that puts it to use; if the block fails (the mission is refused),
    ``target`` is removed again, so a refused upload leaves no workspace behind."""
    unpack_archive(data, filename, target, limits)
    try:
        yield target
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
