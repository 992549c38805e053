"""The shell sandbox: bubblewrap around every command an agent runs, with limits and bounded output.

Inside the sandbox the mission workspace is the only writable host directory, mounted at
:data:`WORKSPACE_MOUNT` (``/workspace``) whatever its host path, so commands never learn or reach the
host layout. The system (``/usr``, the ``/bin``-style links, a few files of ``/etc``) and this process's
Python (``sys.prefix`` and ``sys.base_prefix``) are mounted read-only; ``/tmp`` is a private tmpfs;
there is no network (a fresh network namespace), no capabilities, a fresh PID namespace (every process
dies with the sandbox) and a scrubbed environment.

Limits: ``RLIMIT_AS`` (``shell_memory_mb``), ``RLIMIT_CPU`` (the timeout), ``RLIMIT_NPROC``
(``shell_max_processes``) and, when running as root, where ``RLIMIT_NPROC`` is not enforced by the
kernel, a throw-away ``pids`` cgroup with the same cap. A wall-clock timeout kills the whole process
group. Output is read incrementally and only its head and tail are kept (``shell_max_output_bytes``).

Quotas, each a :class:`QuotaExceeded` tool error naming its setting: ``/tmp`` is a tmpfs of
``shell_tmp_mb`` (it lives in the host's memory), no file may grow past ``shell_max_file_mb``
(``RLIMIT_FSIZE``), and a command that adds more than ``shell_workspace_growth_mb`` to the workspace is
stopped (the workspace's allocated size is measured every 0.2 s, or ten times as long as one measure takes).
Sandbox cgroups whose orchestrator died (``kill -9`` mid-command) are removed by the next process's first
sandbox.

``/proc/self/mountinfo`` still shows the host path of each bind mount's source (the workspace's too): the
kernel reports a mount's root relative to its filesystem, which no bind, overlay or fresh ``/proc`` can
change, and files under ``/proc/<pid>`` cannot be masked for processes that do not exist yet. An operator
who must keep the layout private puts the workspace roots on a filesystem of their own (the path shown is
then relative to it).
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import ToolError
from tools.quotas import MB as _MB
from tools.quotas import QuotaExceeded, WorkspaceGrowth, check_quotas

__all__ = ["WORKSPACE_MOUNT", "QuotaExceeded", "SandboxResult", "bwrap_path", "build_argv", "sandbox_env",
           "run_sandboxed", "sweep_stale_cgroups"]

logger = logging.getLogger(__name__)

WORKSPACE_MOUNT = "/workspace"
"""Where the mission workspace appears inside the sandbox (read-write); also the working directory and HOME."""

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Only what programs need to start and resolve users, locales and certificates: not /etc/shadow & co.
_ETC_ENTRIES = (
    "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd",
    "/etc/group", "/etc/nsswitch.conf", "/etc/hosts", "/etc/localtime", "/etc/timezone", "/etc/ssl",
    "/etc/ca-certificates", "/etc/mime.types", "/etc/bash.bashrc", "/etc/inputrc", "/etc/terminfo",
)
_READ_CHUNK = 1 << 16
_GRACE_S = 0.5
_CGROUP_PREFIX = "orch-sandbox-"


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed command did."""

    exit_code: int | None
    """The command's exit status; negative for a signal; ``None`` if it was killed at the timeout."""
    stdout: str
    """Standard output, or its head and tail with a note saying how many bytes were dropped."""
    stderr: str
    """Standard error, bounded like ``stdout``."""
    duration_s: float
    timed_out: bool
    """The wall-clock limit was reached and the whole sandbox was killed."""
    truncated: bool
    """Output exceeded ``shell_max_output_bytes`` on either stream and was cut in the middle."""
    sandboxed: bool
    """False only when bubblewrap is missing and ``allow_unsandboxed_shell`` let it run anyway."""

    def as_dict(self) -> dict[str, Any]:
        """The shape tools return to the model."""
        return {
            "exit_code": self.exit_code,
            "stdout_tail": self.stdout,
            "stderr_tail": self.stderr,
            "duration_s": round(self.duration_s, 3),
            "timed_out": self.timed_out,
            "truncated": self.truncated,
            "sandboxed": self.sandboxed,
        }


def bwrap_path() -> str | None:
    """The bubblewrap executable, or ``None`` when it is not installed."""
    return shutil.which("bwrap")


def _python_roots() -> list[str]:
    """The interpreter's installation and virtualenv, mounted read-only so workspace code can import them."""
    roots: list[str] = []
    for prefix in (sys.base_prefix, sys.prefix):
        for path in (prefix, os.path.realpath(prefix)):
            if path not in roots and path != "/usr" and not path.startswith("/usr/"):
                roots.append(path)
    return roots


def _python_bin() -> str:
    return os.path.join(sys.prefix, "bin")


def sandbox_env(*, workspace: str) -> dict[str, str]:
    """The whole environment a command sees: nothing inherited from this process (no secrets).

    The interpreter is the service's, so pytest would load every plugin installed beside it (the service's
    own, which no runner of the workspace's CI has, and which cost seconds per run): it loads none of them
    unless the workspace asks (``-p NAME``, ``pytest_plugins`` in a conftest).
    """
    env = {
        "PATH": f"{_python_bin()}:/usr/local/bin:/usr/bin:/bin",
        "HOME": workspace,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg",
        "TERM": "dumb",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return env


def build_argv(command: str | Sequence[str], *, workspace: Path, bwrap: str = "bwrap",
               tmp_mb: int | None = None, readonly: bool = False) -> list[str]:
    """The bubblewrap command line running ``command`` (a shell string or an argv) in ``workspace``.

    ``tmp_mb``: the size of the private ``/tmp`` (``shell_tmp_mb``); unsized when ``None``.
    ``readonly``: the workspace is mounted read-only (commands that only read it and answer on stdout).

    A string runs as ``bash -c`` (not a login shell: ``/etc/profile`` would reset ``PATH`` and hide the
    project's virtualenv).
    """
    argv = [bwrap, "--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--die-with-parent",
            "--new-session", "--hostname", "sandbox"]
    for entry in _SYSTEM_DIRS:
        if os.path.islink(entry):
            argv += ["--symlink", os.readlink(entry), entry]
        elif os.path.isdir(entry):
            argv += ["--ro-bind", entry, entry]
    for entry in _ETC_ENTRIES:
        if os.path.lexists(entry):
            argv += ["--ro-bind-try", entry, entry]
    # The private /tmp comes before the interpreter's binds: a checkout (and its .venv) may itself live in /tmp.
    if tmp_mb is not None:  # the tmpfs is held in memory: unsized, one command could fill the host's RAM
        argv += ["--size", str(tmp_mb * _MB)]
    argv += ["--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev"]
    for root in _python_roots():
        argv += ["--ro-bind", root, root]
    argv += ["--ro-bind" if readonly else "--bind", str(workspace.resolve()), WORKSPACE_MOUNT,
             # The root is bwrap's own tmpfs: read-only, so only /workspace and /tmp take writes.
             "--remount-ro", "/", "--chdir", WORKSPACE_MOUNT, "--clearenv"]
    for key, value in sandbox_env(workspace=WORKSPACE_MOUNT).items():
        argv += ["--setenv", key, value]
    argv.append("--")
    argv += ["bash", "-c", command] if isinstance(command, str) else list(command)
    return argv


class _Output:
    """One stream's head and tail, bounded to ``cap`` bytes however much is written."""

    def __init__(self, cap: int) -> None:
        self._half = max(cap // 2, 1)
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            if len(self._tail) > self._half:
                del self._tail[: len(self._tail) - self._half]

    @property
    def dropped(self) -> int:
        return self.total - len(self._head) - len(self._tail)

    def text(self) -> str:
        head = self._head.decode("utf-8", "replace")
        if not self.dropped:
            return head + self._tail.decode("utf-8", "replace")
        note = f"\n[... {self.dropped} bytes of output dropped (limit shell_max_output_bytes) ...]\n"
        return head + note + self._tail.decode("utf-8", "replace")


class _PidsCgroup:
    """A throw-away ``pids`` cgroup: the process cap for root, whom ``RLIMIT_NPROC`` does not bind."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, max_pids: int) -> _PidsCgroup | None:
        base = cls._parent_dir()
        if base is None:
            return None
        if base not in _swept:  # once per process: what a killed orchestrator left behind
            _swept.add(base)
            sweep_stale_cgroups(base)
        path = base / f"{_CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_pids))
        except OSError as exc:
            logger.debug("pids cgroup unavailable at %s: %s", base, exc)
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return cls(path)

    @staticmethod
    def _parent_dir() -> Path | None:
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            _, controllers, rel = line.split(":", 2)
            if "pids" in controllers.split(","):  # cgroup v1 hierarchy
                candidate = Path("/sys/fs/cgroup/pids") / rel.lstrip("/")
                return candidate if os.access(candidate, os.W_OK) else None
        for line in lines:
            if line.startswith("0::"):  # cgroup v2: usable only if pids is delegated to our children
                candidate = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
                try:
                    delegated = "pids" in (candidate / "cgroup.subtree_control").read_text().split()
                except OSError:
                    return None
                return candidate if delegated and os.access(candidate, os.W_OK) else None
        return None

    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def kill_all(self) -> None:
        kill_file = self.path / "cgroup.kill"
        if kill_file.exists():
            kill_file.write_text("1")
            return
        for _ in range(100):
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                self.kill_all()
                time.sleep(0.02)
        logger.warning("could not remove sandbox cgroup %s", self.path)


_swept: set[Path] = set()


def sweep_stale_cgroups(base: Path | None = None) -> list[Path]:
    """Remove the empty sandbox cgroups of orchestrator processes that are gone; returns the removed ones.

    A ``kill -9`` of the orchestrator mid-command kills the sandbox with it (``--die-with-parent``) but
    leaves its cgroup directory (and, killed while bwrap was still setting up, a live sandbox: it is killed).
    One named for a live process is left alone (its sandbox may be starting); one of the older name without
    a process id is removed only when empty and a minute old.
    """
    base = base or _PidsCgroup._parent_dir()
    if base is None:
        return []
    removed = []
    for path in base.glob(f"{_CGROUP_PREFIX}*"):
        owner, _, rest = path.name.removeprefix(_CGROUP_PREFIX).partition("-")
        try:
            if rest and owner.isdigit():
                if _process_exists(int(owner)):
                    continue
                # A sandbox started just as its orchestrator died can outlive it: bwrap's --die-with-parent
                # takes effect only once bwrap has set itself up.
                _PidsCgroup(path).kill_all()
            elif time.time() - path.stat().st_mtime < 60:
                continue
            path.rmdir()
        except OSError:
            continue
        removed.append(path)
    if removed:
        logger.info("removed %d sandbox cgroup(s) left by stopped orchestrator processes", len(removed))
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _limits_preexec(settings: Settings, timeout: float, cgroup_procs: str | None):
    memory = settings.shell_memory_mb * 1024 * 1024
    cpu = math.ceil(timeout) + 1
    nproc = settings.shell_max_processes
    fsize = settings.shell_max_file_mb * _MB

    def preexec() -> None:  # runs in the child between fork and exec: keep it to system calls
        if _prctl is not None:  # die with the orchestrator (bwrap does this itself; a plain shell would not)
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if cgroup_procs is not None:
            fd = os.open(cgroup_procs, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return preexec


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_sandboxed(
    command: str | Sequence[str], cwd: Path, settings: Settings, timeout: float | None = None, *,
    readonly: bool = False, max_output_bytes: int | None = None,
) -> SandboxResult:
    """Run ``command`` with ``cwd`` (the mission workspace) as the only writable directory.

    ``timeout`` defaults to ``settings.shell_timeout_s`` and never exceeds it. Without bubblewrap this
    raises :class:`ToolError` unless ``settings.allow_unsandboxed_shell`` is set, in which case the command
    runs directly (with the same limits and scrubbed environment) and the result says ``sandboxed=False``.

    ``readonly``: the workspace is mounted read-only too, for commands that only read it and answer on
    standard output (the ML tools' model runner: an unpickled model must not rewrite what the host reads
    next); ``max_output_bytes`` then bounds that answer instead of ``shell_max_output_bytes``.
    """
    limit = settings.shell_timeout_s if timeout is None else min(float(timeout), settings.shell_timeout_s)
    limit = max(limit, 0.1)
    workspace = cwd.resolve()
    bwrap = bwrap_path()
    if bwrap is not None:
        argv = build_argv(command, workspace=workspace, bwrap=bwrap, tmp_mb=settings.shell_tmp_mb,
                          readonly=readonly)
        run_cwd, env, sandboxed = "/", {}, True
    elif settings.allow_unsandboxed_shell:
        logger.warning("bubblewrap missing: running a shell command unsandboxed (allow_unsandboxed_shell)")
        argv = ["bash", "-c", command] if isinstance(command, str) else list(command)
        run_cwd, env, sandboxed = str(workspace), sandbox_env(workspace=str(workspace)), False
    else:
        raise ToolError(
            "the shell sandbox is unavailable: bubblewrap (bwrap) is not installed on the orchestrator host; "
            "an operator must install it (apt-get install bubblewrap) or set ORCH_ALLOW_UNSANDBOXED_SHELL=true"
        )

    cgroup = _PidsCgroup.create(settings.shell_max_processes) if os.geteuid() == 0 else None
    if os.geteuid() == 0 and cgroup is None:
        _warn_once("running as root without a writable pids cgroup: the shell process limit is not enforced")
    out, err = _Output(max_output_bytes or settings.shell_max_output_bytes), _Output(settings.shell_max_output_bytes)
    growth = None if readonly else WorkspaceGrowth(workspace, cap=settings.shell_workspace_growth_mb * _MB)
    started = time.monotonic()
    deadline = started + limit
    timed_out = stopped = False
    try:
        proc = subprocess.Popen(
            argv, cwd=run_cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=_limits_preexec(settings, limit, cgroup.procs_file() if cgroup else None),
        )
        try:
            stopped = _pump(proc, {proc.stdout: out, proc.stderr: err}, deadline,
                            watch=growth.exceeded if growth else None)
            timed_out = stopped and not (growth and growth.tripped)
            if not stopped:
                try:
                    proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
                except subprocess.TimeoutExpired:
                    timed_out = stopped = True
            if stopped:
                _kill_group(proc)
                if cgroup:
                    cgroup.kill_all()
                proc.wait()
        finally:
            if not sandboxed:  # a sandbox's stragglers die with its PID namespace; unsandboxed ones do not
                _kill_group(proc)
            for stream in (proc.stdout, proc.stderr):
                stream.close()
    finally:
        if cgroup:
            cgroup.remove()
    result = SandboxResult(
        exit_code=None if stopped else proc.returncode,
        stdout=out.text(),
        stderr=err.text() + (f"\n[killed: wall-clock limit of {limit:g}s reached]" if timed_out else ""),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        truncated=bool(out.dropped or err.dropped),
        sandboxed=sandboxed,
    )
    if growth is not None:
        growth.exceeded(time.monotonic(), final=True)
    check_quotas(result, settings=settings, workspace=workspace, growth=growth)
    return result


def _pump(proc: subprocess.Popen[bytes], sinks: dict[Any, _Output], deadline: float,
          watch: Callable[[float], bool] | None = None) -> bool:
    """Drain both pipes into their bounded sinks until EOF, the deadline, or ``watch(now)`` says stop;
    True if the command was stopped (the deadline hit or ``watch`` said so)."""
    selector = selectors.DefaultSelector()
    for stream, sink in sinks.items():
        os.set_blocking(stream.fileno(), False)
        selector.register(stream, selectors.EVENT_READ, sink)
    exited_at: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline or (watch is not None and watch(now)):
                return True
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > _GRACE_S:
                return False  # the command is done; something it left behind holds the pipe open
            for key, _ in selector.select(timeout=min(deadline - now, 0.1)):
                try:
                    chunk = os.read(key.fileobj.fileno(), _READ_CHUNK)
                except BlockingIOError:
                    continue
                if chunk:
                    key.data.feed(chunk)
                else:
                    selector.unregister(key.fileobj)
        return False
    finally:
        selector.close()
