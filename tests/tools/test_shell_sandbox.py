"""The shell sandbox: every escape attempt is refused or contained, every limit holds, the mission goes on."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from orchestrator.errors import ToolError
from tools.context import ToolContext
from tools.sandbox import WORKSPACE_MOUNT, QuotaExceeded, build_argv, bwrap_path, run_sandboxed
from tools.shell import bash

FAST = 3.0


def sh(ctx: ToolContext, command: str, timeout_s: float = FAST) -> dict:
    return json.loads(bash.invoke({"command": command, "timeout_s": timeout_s, "ctx": ctx}))


@pytest.fixture(autouse=True)
def _bwrap_present() -> None:
    # Not a skip: without bubblewrap these tests must fail loudly (CI installs it).
    assert bwrap_path() is not None, "bubblewrap (bwrap) is required for the sandbox tests: apt-get install bubblewrap"




def test_runs_in_workspace_with_project_python(tool_ctx: ToolContext) -> None:
    (tool_ctx.workspace / "hello.txt").write_text("hi\n")
    out = sh(tool_ctx, "pwd; cat hello.txt; python -c 'import numpy, pandas, sklearn; print(\"ml ok\")'", 30)
    assert out["exit_code"] == 0, out
    assert out["stdout_tail"].splitlines() == [WORKSPACE_MOUNT, "hi", "ml ok"]
    assert out["sandboxed"] is True and out["timed_out"] is False and out["truncated"] is False


def test_writes_land_in_the_host_workspace(tool_ctx: ToolContext) -> None:
    out = sh(tool_ctx, "mkdir -p out && echo 42 > out/answer.txt")
    assert out["exit_code"] == 0, out
    assert (tool_ctx.workspace / "out" / "answer.txt").read_text() == "42\n"


def test_write_outside_through_tmp_dotdot_is_contained(tool_ctx: ToolContext, tmp_path: Path) -> None:
    target = tmp_path / "outside"
    out = sh(tool_ctx, f"echo x > /tmp/..{tmp_path}/outside; echo x > {target}; ls {tmp_path}")
    assert not target.exists()
    assert "No such file or directory" in out["stderr_tail"]


def test_write_to_another_host_dir_is_contained(tool_ctx: ToolContext, sibling: Path) -> None:
    out = sh(tool_ctx, f"echo pwned > {sibling}/pwned.txt; echo pwned > {sibling}/secret.txt")
    assert out["exit_code"] != 0
    assert not (sibling / "pwned.txt").exists()
    assert (sibling / "secret.txt").read_text() == "other mission's data\n"


def test_system_dirs_are_read_only(tool_ctx: ToolContext) -> None:
    out = sh(tool_ctx, "touch /usr/pwned; touch /etc/pwned; echo done")
    assert "Read-only file system" in out["stderr_tail"]
    assert not Path("/usr/pwned").exists() and not Path("/etc/pwned").exists()


def test_reading_another_missions_workspace_via_shell_fails(tool_ctx: ToolContext, sibling: Path) -> None:
    out = sh(tool_ctx, f"cat {sibling}/secret.txt; cat ../other-mission/secret.txt; ls /")
    assert "other mission's data" not in out["stdout_tail"]
    assert out["stderr_tail"].count("No such file or directory") == 2


def test_host_secrets_are_not_mounted(tool_ctx: ToolContext) -> None:
    out = sh(tool_ctx, "cat /etc/shadow; ls /root/.ssh; ls /home; ls /sys; echo end")
    assert out["stdout_tail"].strip() == "end"


def test_symlink_to_etc_created_in_shell_shows_only_the_sandbox_view(tool_ctx: ToolContext) -> None:
    out = sh(tool_ctx, "ln -s /etc etc-link && ls etc-link/shadow; echo x > etc-link/pwned")
    assert out["exit_code"] != 0
    assert not Path("/etc/pwned").exists()


def test_no_network_even_to_host_loopback(tool_ctx: ToolContext) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        probe = f"import socket; s = socket.create_connection(('127.0.0.1', {port}), timeout=1); print('CONNECTED')"
        out = sh(tool_ctx, f"python -c \"{probe}\"")
        assert out["exit_code"] != 0 and "CONNECTED" not in out["stdout_tail"]
        assert "Connection refused" in out["stderr_tail"] or "unreachable" in out["stderr_tail"]
        if shutil.which("curl"):
            out = sh(tool_ctx, f"curl -sS -m 1 http://127.0.0.1:{port}/")
            assert out["exit_code"] != 0
        out = sh(tool_ctx, "python -c \"import socket; socket.create_connection(('1.1.1.1', 80), timeout=1)\"")
        assert out["exit_code"] != 0
        with pytest.raises(socket.timeout):
            server.accept()  # nothing ever reached the host listener
    finally:
        server.close()


def test_parent_secret_env_is_not_inherited(tool_ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_SECRET_PROBE", "s3cr3t")
    out = sh(tool_ctx, "env")
    assert out["exit_code"] == 0
    assert "s3cr3t" not in out["stdout_tail"] and "ORCH_SECRET_PROBE" not in out["stdout_tail"]
    assert f"HOME={WORKSPACE_MOUNT}" in out["stdout_tail"]


def test_endless_loop_is_killed_and_the_mission_goes_on(tool_ctx: ToolContext) -> None:
    out = sh(tool_ctx, "while true; do :; done", 1.5)
    assert out["timed_out"] is True and out["exit_code"] is None
    assert 1.4 <= out["duration_s"] < 5
    assert sh(tool_ctx, "echo still here")["stdout_tail"] == "still here\n"


def test_background_processes_die_with_the_sandbox(tool_ctx: ToolContext) -> None:
    out = sh(tool_ctx, "(sleep 30; echo late > late.txt) & echo started")
    assert out["exit_code"] == 0 and out["duration_s"] < 2
    out = sh(tool_ctx, "sleep 1.2; ls")
    assert "late.txt" not in out["stdout_tail"]


def _processes_running(marker: str) -> list[int]:
    """Host PIDs whose command line contains ``marker`` (sandboxed processes are visible from the host)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(int(entry))
    return found


def test_fork_bomb_is_contained_and_the_mission_goes_on(tool_ctx: ToolContext) -> None:
    bomb = ":(){ :|:& };:; wait"
    out = sh(tool_ctx, bomb, 2)
    # Stopped by the process cap (failed forks; under load the bomb may collapse before bash can report it)
    # or, at worst, by the clock: either way the call returns within its limit.
    assert out["duration_s"] < 2 + 3, out
    assert _processes_running(bomb) == [], "sandboxed processes outlived the call"
    assert sh(tool_ctx, "echo alive")["stdout_tail"] == "alive\n"


def test_process_limit_is_enforced(tool_ctx: ToolContext) -> None:
    tool_ctx.settings.shell_max_processes = 20
    out = sh(tool_ctx, "for i in $(seq 60); do sleep 2 & done; wait", 5)
    assert "Resource temporarily unavailable" in out["stderr_tail"] or "fork" in out["stderr_tail"]


def test_memory_limit_is_enforced(tool_ctx: ToolContext) -> None:
    tool_ctx.settings.shell_memory_mb = 256
    out = sh(tool_ctx, "python -c \"b = bytearray(600 * 1024 * 1024); print('allocated')\"", 10)
    assert out["exit_code"] != 0 and "allocated" not in out["stdout_tail"]
    assert "MemoryError" in out["stderr_tail"]


def test_100mb_of_output_is_truncated_with_bounded_memory(tool_ctx: ToolContext) -> None:
    tracemalloc.start()
    try:
        out = sh(tool_ctx, "yes | head -c 100000000", 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    cap = tool_ctx.settings.shell_max_output_bytes
    assert out["exit_code"] == 0 and out["truncated"] is True
    assert "bytes of output dropped" in out["stdout_tail"]
    dropped = int(out["stdout_tail"].split("[... ")[1].split(" bytes")[0])
    assert dropped == 100_000_000 - cap
    assert len(out["stdout_tail"]) < cap + 200
    assert peak < 10 * cap + 5_000_000, f"peak traced memory {peak} bytes: output was buffered"


def test_both_streams_are_captured(tool_ctx: ToolContext) -> None:
    out = sh(tool_ctx, "echo out; echo err >&2; exit 3")
    assert (out["exit_code"], out["stdout_tail"], out["stderr_tail"]) == (3, "out\n", "err\n")


def test_output_secrets_are_redacted(tool_ctx: ToolContext) -> None:
    out = sh(tool_ctx, "echo OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz123456")
    assert "sk-abc" not in out["stdout_tail"] and "[REDACTED:" in out["stdout_tail"]


def test_timeout_cannot_exceed_the_configured_maximum(tool_ctx: ToolContext) -> None:
    tool_ctx.settings.shell_timeout_s = 1.0
    out = sh(tool_ctx, "sleep 5", 600)
    assert out["timed_out"] is True and out["duration_s"] < 3


def test_missing_bwrap_is_a_clear_error(tool_ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tools.sandbox.bwrap_path", lambda: None)
    with pytest.raises(ToolError, match="bubblewrap"):
        run_sandboxed("true", tool_ctx.workspace, tool_ctx.settings, FAST)


def test_missing_bwrap_with_opt_in_runs_unsandboxed(tool_ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tools.sandbox.bwrap_path", lambda: None)
    monkeypatch.setenv("ORCH_SECRET_PROBE", "s3cr3t")
    tool_ctx.settings.allow_unsandboxed_shell = True
    out = sh(tool_ctx, "pwd; env")
    assert out["sandboxed"] is False and out["exit_code"] == 0
    assert out["stdout_tail"].splitlines()[0] == str(tool_ctx.workspace.resolve())
    assert "s3cr3t" not in out["stdout_tail"]


def test_concurrent_calls_do_not_interfere(tool_ctx: ToolContext) -> None:
    results: dict[int, dict] = {}

    def call(i: int) -> None:
        results[i] = sh(tool_ctx, f"echo {i} > f{i}.txt; cat f{i}.txt")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {i: r["stdout_tail"] for i, r in results.items()} == {i: f"{i}\n" for i in range(4)}


def test_private_tmp_does_not_hide_an_interpreter_installed_under_tmp(tmp_path: Path) -> None:
    # A checkout (and its .venv) in /tmp must stay visible: /tmp's tmpfs is mounted before the binds.
    argv = build_argv("true", workspace=tmp_path)
    tmpfs = argv.index("--tmpfs")
    binds = [i for i, arg in enumerate(argv) if arg == "--ro-bind" and argv[i + 1].startswith(sys.prefix)]
    assert binds and all(i > tmpfs for i in binds)


def test_tmp_is_sized_and_filling_it_is_a_quota_error(tool_ctx: ToolContext) -> None:
    tool_ctx.settings.shell_tmp_mb = 16
    with pytest.raises(QuotaExceeded, match=r"/tmp is full: it holds at most 16 MB \(shell_tmp_mb"):
        sh(tool_ctx, "dd if=/dev/zero of=/tmp/fill bs=1M count=64", 10)
    out = sh(tool_ctx, "dd if=/dev/zero of=/tmp/fits bs=1M count=8 status=none && df -m /tmp | tail -1")
    assert out["exit_code"] == 0 and out["stdout_tail"].split()[1] == "16", out  # the tmpfs is 16 MB


@pytest.mark.parametrize("writer", [
    "dd if=/dev/zero of=huge.bin bs=1M count=64",  # killed by SIGXFSZ
    "python -c \"open('huge.bin', 'wb').write(bytes(64 * 1024 * 1024))\"",  # Python ignores SIGXFSZ: EFBIG
    "dd if=/dev/zero of=/tmp/huge.bin bs=1M count=64",  # in /tmp too
], ids=["dd", "python", "tmp"])
def test_a_huge_file_is_a_quota_error(tool_ctx: ToolContext, writer: str) -> None:
    tool_ctx.settings.shell_max_file_mb = 8
    with pytest.raises(QuotaExceeded, match=r"limit of 8 MB per file \(shell_max_file_mb\)"):
        sh(tool_ctx, writer, 10)
    huge = tool_ctx.workspace / "huge.bin"
    assert not huge.exists() or huge.stat().st_size <= 8 * 1024 * 1024


def test_workspace_growth_past_the_cap_stops_the_command(tool_ctx: ToolContext) -> None:
    tool_ctx.settings.shell_workspace_growth_mb = 32
    writer = "for i in $(seq 2000); do head -c 1000000 /dev/zero > part-$i.bin; done; echo finished"
    with pytest.raises(QuotaExceeded, match=r"was stopped: it added \d+ MB to the workspace, more than the 32 MB"):
        sh(tool_ctx, writer, 60)
    written = sum(p.stat().st_size for p in tool_ctx.workspace.glob("part-*.bin"))
    assert 32_000_000 < written < 1_000_000_000  # stopped long before the 2 GB it meant to write
    for part in tool_ctx.workspace.glob("part-*.bin"):
        part.unlink()
    out = sh(tool_ctx, "for i in $(seq 8); do head -c 1000000 /dev/zero > ok-$i.bin; done; echo finished")
    assert out["stdout_tail"] == "finished\n"  # under the cap: an ordinary result


def test_growth_already_in_the_workspace_does_not_count(tool_ctx: ToolContext) -> None:
    (tool_ctx.workspace / "model.bin").write_bytes(bytes(40 * 1024 * 1024))
    tool_ctx.settings.shell_workspace_growth_mb = 16
    assert sh(tool_ctx, "ls -l model.bin && echo ok")["stdout_tail"].endswith("ok\n")


def _sandbox_cgroups(base: Path, pid: int) -> list[Path]:
    return list(base.glob(f"orch-sandbox-{pid}-*"))


def test_a_cgroup_leaked_by_a_killed_orchestrator_is_removed_at_the_next_start(tool_ctx: ToolContext) -> None:
    import signal
    import subprocess
    import time

    from tools.sandbox import _PidsCgroup

    base = _PidsCgroup._parent_dir()
    if os.geteuid() != 0 or base is None:
        pytest.skip("sandbox cgroups are used only as root with a writable pids cgroup")
    script = ("import sys; from pathlib import Path; from orchestrator.config import Settings; "
              "from tools.sandbox import run_sandboxed; "
              "run_sandboxed('touch started; sleep 60', Path(sys.argv[1]), Settings(_env_file=None))")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tool_ctx.workspace)])
    try:
        deadline = time.monotonic() + 20
        while not (tool_ctx.workspace / "started").exists():
            assert time.monotonic() < deadline, "the sandbox never started"
            time.sleep(0.05)
        [leaked] = _sandbox_cgroups(base, proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    deadline = time.monotonic() + 10
    while (leaked / "cgroup.procs").read_text().strip():  # the sandbox dies with its orchestrator
        assert time.monotonic() < deadline, "the sandbox outlived its orchestrator"
        time.sleep(0.05)
    assert leaked.exists()  # kill -9 left the empty cgroup behind
    starter = subprocess.run([sys.executable, "-c", script.replace("touch started; sleep 60", "true"),
                              str(tool_ctx.workspace)], timeout=60, check=False)
    assert starter.returncode == 0
    assert not leaked.exists()  # the next orchestrator's first sandbox removed it


def test_the_sweep_kills_what_a_dead_orchestrator_left_and_spares_the_living(tmp_path: Path) -> None:
    from tools.sandbox import sweep_stale_cgroups

    live = tmp_path / f"orch-sandbox-{os.getpid()}-abc"
    dead = tmp_path / "orch-sandbox-999999999-abc"
    fresh_old_style = tmp_path / "orch-sandbox-0123456789ab"
    for path in (live, dead, fresh_old_style):
        path.mkdir()
    assert sweep_stale_cgroups(tmp_path) == [dead]
    assert live.exists() and fresh_old_style.exists()


def test_the_sweep_kills_a_sandbox_orphaned_while_it_started() -> None:
    import subprocess
    import time

    from tools.sandbox import _PidsCgroup, sweep_stale_cgroups

    base = _PidsCgroup._parent_dir()
    if os.geteuid() != 0 or base is None:
        pytest.skip("sandbox cgroups are used only as root with a writable pids cgroup")
    orphan_group = base / "orch-sandbox-999999999-orphan"
    orphan_group.mkdir()
    orphan = subprocess.Popen(["sleep", "60"])
    try:
        (orphan_group / "cgroup.procs").write_text(str(orphan.pid))
        assert orphan_group in sweep_stale_cgroups(base)
        assert orphan.wait(timeout=5) == -9 and not orphan_group.exists()
    finally:
        orphan.kill()
        orphan.wait()
        time.sleep(0.05)
        if orphan_group.exists():
            orphan_group.rmdir()
