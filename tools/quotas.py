"""Disk quotas of sandboxed commands: how the workspace's growth is measured, and which quota a command hit.

The sandbox (``tools/sandbox.py``) enforces three: ``/tmp`` is a tmpfs of ``shell_tmp_mb`` (it lives in the
host's memory), no file may grow past ``shell_max_file_mb`` (``RLIMIT_FSIZE``), and a command that adds
more than ``shell_workspace_growth_mb`` to the workspace is stopped. The first two make writes fail inside
the command; :func:`check_quotas` turns those failures, and the third, into a :class:`QuotaExceeded` tool
error naming the setting and what to do, instead of an exit code the model would have to decode.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.config import Settings
from orchestrator.errors import ToolError

if TYPE_CHECKING:
    from tools.sandbox import SandboxResult

__all__ = ["MB", "QuotaExceeded", "WorkspaceGrowth", "allocated_bytes", "check_quotas"]

MB = 1024 * 1024
_MIN_INTERVAL_S = 0.2


class QuotaExceeded(ToolError):
    """A sandboxed command ran into a disk quota: ``/tmp``'s size, a file's size or the workspace's growth."""


class WorkspaceGrowth:
    """How much one command adds to the workspace, measured while it runs.

    At ~1 GB/s a measure every 0.2 s lets a command overshoot by a few hundred MB at most; a workspace
    whose measure takes longer is measured less often (ten times the measure's own duration).
    """

    def __init__(self, root: Path, *, cap: int) -> None:
        self.root, self.cap = root, cap
        self.baseline = allocated_bytes(root)
        self.grown = 0
        """Bytes added since the command started, at the last measure."""
        self.tripped = False
        """The command was stopped because of it."""
        self._interval = _MIN_INTERVAL_S
        self._next = time.monotonic() + self._interval

    def exceeded(self, now: float, *, final: bool = False) -> bool:
        """True once the workspace has grown past the cap (``final``: measure now, after the command)."""
        if self.tripped or (now < self._next and not final):
            return self.tripped
        began = time.monotonic()
        self.grown = allocated_bytes(self.root) - self.baseline
        took = time.monotonic() - began
        self._interval = max(_MIN_INTERVAL_S, 10 * took)
        self._next = began + took + self._interval
        self.tripped = self.grown > self.cap and not final
        return self.tripped


def allocated_bytes(root: Path) -> int:
    """Bytes allocated to everything under ``root`` (hard links once, symlinks not followed, sparse holes free)."""
    total, seen, stack = 0, set(), [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:  # removed meanwhile
                        continue
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if info.st_nlink > 1 and not is_dir:
                        if (info.st_dev, info.st_ino) in seen:
                            continue
                        seen.add((info.st_dev, info.st_ino))
                    total += info.st_blocks * 512
                    if is_dir:
                        stack.append(entry.path)
        except OSError:
            continue
    return total


def check_quotas(result: SandboxResult, *, settings: Settings, workspace: Path,
                 growth: WorkspaceGrowth | None = None) -> None:
    """Raise :class:`QuotaExceeded` when the command ran into a quota, saying which setting and what to do."""
    tails = (f"\nexit code: {result.exit_code}\nstderr (end): {result.stderr[-600:]}"
             f"\nstdout (end): {result.stdout[-300:]}")
    if growth is not None and growth.grown > growth.cap:
        how = "was stopped: it added" if growth.tripped else "added"
        raise QuotaExceeded(
            f"the command {how} {growth.grown // MB} MB to the workspace, more than the "
            f"{settings.shell_workspace_growth_mb} MB one command may add (shell_workspace_growth_mb). What it "
            "wrote is still in the workspace: remove what is not needed (`du -sh * | sort -h`) and write less, "
            f"or in several commands.{tails}")
    failed = result.exit_code not in (0, None)
    if result.exit_code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ) or (
            failed and ("File size limit exceeded" in result.stderr or "File too large" in result.stderr)):
        raise QuotaExceeded(
            f"a file the command wrote reached the limit of {settings.shell_max_file_mb} MB per file "
            f"(shell_max_file_mb) and the write failed: write smaller files (split or compress them).{tails}")
    if failed and "No space left on device" in result.stderr:
        try:
            disk = os.statvfs(workspace)
            free_mb = disk.f_bavail * disk.f_frsize // MB
        except OSError:
            free_mb = 0
        if free_mb < 64:
            raise QuotaExceeded(f"the disk holding the workspace is full ({free_mb} MB free): an operator must "
                                f"free space on the orchestrator host.{tails}")
        raise QuotaExceeded(
            f"/tmp is full: it holds at most {settings.shell_tmp_mb} MB (shell_tmp_mb; it lives in memory). "
            f"Write large files under /workspace instead, and remove them when done.{tails}")
