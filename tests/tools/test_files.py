"""File tools: confinement (every escape refused), size caps, exact edits and recorded artifacts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.errors import ToolDenied, ToolError
from tests.support.records import recorded_artifacts
from tools.context import ToolContext
from tools.files import artifact_kind, edit_file, list_files, read_file, write_file
from tools.workspace import resolve_in_workspace


def call(tool, ctx: ToolContext, **args):  # noqa: ANN001, ANN201 - thin test helper
    return tool.invoke({**args, "ctx": ctx})




# --- escapes -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["../outside.txt", "a/../../outside.txt", "/etc/passwd", "~/x.txt", ""],
                         ids=["dotdot", "nested-dotdot", "absolute", "home", "empty"])
def test_escaping_paths_are_refused_for_read_and_write(tool_ctx: ToolContext, tmp_path: Path, path: str) -> None:
    with pytest.raises(ToolDenied):
        call(read_file, tool_ctx, path=path)
    with pytest.raises(ToolDenied):
        call(write_file, tool_ctx, path=path, content="x")
    assert not (tmp_path / "outside.txt").exists()
    assert recorded_artifacts(tool_ctx) == []


def test_symlink_to_etc_is_refused(tool_ctx: ToolContext) -> None:
    (tool_ctx.workspace / "etc").symlink_to("/etc")
    with pytest.raises(ToolDenied, match="symlink"):
        call(read_file, tool_ctx, path="etc/passwd")
    with pytest.raises(ToolDenied):
        call(list_files, tool_ctx, path="etc")
    with pytest.raises(ToolDenied):
        call(write_file, tool_ctx, path="etc/pwned", content="x")
    assert not Path("/etc/pwned").exists()


def test_dangling_symlink_out_is_refused_for_write(tool_ctx: ToolContext, tmp_path: Path) -> None:
    (tool_ctx.workspace / "report.md").symlink_to(tmp_path / "planted.md")
    with pytest.raises(ToolDenied):
        call(write_file, tool_ctx, path="report.md", content="x")
    assert not (tmp_path / "planted.md").exists()


def test_another_missions_workspace_is_unreachable(tool_ctx: ToolContext, sibling: Path) -> None:
    for path in ("../other-mission/secret.txt", str(sibling / "secret.txt")):
        with pytest.raises(ToolDenied):
            call(read_file, tool_ctx, path=path)
    with pytest.raises(ToolDenied):
        call(list_files, tool_ctx, path="../other-mission")
    with pytest.raises(ToolDenied):
        call(edit_file, tool_ctx, path="../other-mission/secret.txt", old_text="other", new_text="mine")
    assert (sibling / "secret.txt").read_text() == "other mission's data\n"


def test_fifo_is_refused(tool_ctx: ToolContext) -> None:
    os.mkfifo(tool_ctx.workspace / "pipe")
    with pytest.raises(ToolDenied, match="not a regular file"):
        call(read_file, tool_ctx, path="pipe")


def test_symlink_inside_the_workspace_is_followed(tool_ctx: ToolContext) -> None:
    (tool_ctx.workspace / "real.txt").write_text("real\n")
    (tool_ctx.workspace / "alias.txt").symlink_to("real.txt")
    assert resolve_in_workspace(tool_ctx.workspace, "alias.txt") == (tool_ctx.workspace / "real.txt").resolve()


# --- read / list -----------------------------------------------------------------------------------------

def test_read_file_windows(tool_ctx: ToolContext) -> None:
    (tool_ctx.workspace / "lines.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    first = call(read_file, tool_ctx, path="lines.txt", max_lines=4)
    assert first.splitlines()[0] == "# lines.txt: lines 1-4 of 10 (more: read_file with offset_line=4)"
    assert first.splitlines()[1:] == ["line 1", "line 2", "line 3", "line 4"]
    last = call(read_file, tool_ctx, path="./lines.txt", offset_line=8)
    assert last == "# lines.txt: lines 9-10 of 10\nline 9\nline 10\n"


def test_read_file_errors_are_actionable(tool_ctx: ToolContext) -> None:
    (tool_ctx.workspace / "data").mkdir()
    (tool_ctx.workspace / "blob.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ToolError, match="does not exist"):
        call(read_file, tool_ctx, path="missing.py")
    with pytest.raises(ToolError, match="directory"):
        call(read_file, tool_ctx, path="data")
    with pytest.raises(ToolError, match="binary"):
        call(read_file, tool_ctx, path="blob.bin")


def test_read_file_size_cap(tool_ctx: ToolContext) -> None:
    tool_ctx.settings.max_read_bytes = 100
    (tool_ctx.workspace / "big.txt").write_text("x" * 101)
    with pytest.raises(ToolError, match="max_read_bytes"):
        call(read_file, tool_ctx, path="big.txt")


def test_list_files_recursive_and_skips_caches(tool_ctx: ToolContext) -> None:
    ws = tool_ctx.workspace
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (ws / "__pycache__").mkdir()
    (ws / "__pycache__" / "junk.pyc").write_bytes(b"0")
    (ws / "README.md").write_text("hi\n")
    (ws / "etc").symlink_to("/etc")
    lines = call(list_files, tool_ctx).splitlines()
    assert lines == ["etc -> /etc", "src/", "README.md  3", "src/pkg/", "src/pkg/mod.py  6"]


def test_list_files_is_bounded(tool_ctx: ToolContext) -> None:
    for i in range(520):
        (tool_ctx.workspace / f"f{i:03}.txt").write_text("")
    lines = call(list_files, tool_ctx).splitlines()
    assert len(lines) == 501 and lines[-1].startswith("[... more entries")


# --- write / edit --------------------------------------------------------------------------------------

def test_write_file_records_artifact_with_kind(tool_ctx: ToolContext) -> None:
    result = json.loads(call(write_file, tool_ctx, path="pipelines/score.py", content="print('hi')\n"))
    assert (tool_ctx.workspace / "pipelines" / "score.py").read_text() == "print('hi')\n"
    assert result["path"] == "pipelines/score.py" and result["kind"] == "code" and result["bytes"] == 12
    [artifact] = recorded_artifacts(tool_ctx)
    assert artifact["path"] == "pipelines/score.py" and artifact["kind"] == "code"
    assert (artifact["agent"], artifact["step"], artifact["sha256"]) == ("ml-engineer", "implement", result["sha256"])


def test_write_file_size_cap(tool_ctx: ToolContext) -> None:
    tool_ctx.settings.max_write_bytes = 10
    with pytest.raises(ToolError, match="max_write_bytes"):
        call(write_file, tool_ctx, path="a.txt", content="x" * 11)
    assert not (tool_ctx.workspace / "a.txt").exists()


@pytest.mark.parametrize(("path", "kind"), [
    ("train.py", "code"), ("config/model.yaml", "config"), ("README.md", "doc"), ("data/scores.csv", "data"),
    ("reports/evaluation.md", "report"), ("report.html", "report"), ("data/sample.json", "data"),
    ("settings.json", "config"), ("Dockerfile", "code"), ("models/model.joblib", "model"), ("notes", "file"),
])
def test_artifact_kind(path: str, kind: str) -> None:
    assert artifact_kind(path) == kind


def test_edit_file_exact_single_replacement(tool_ctx: ToolContext) -> None:
    (tool_ctx.workspace / "app.py").write_text("a = 1\nb = 2\nc = 3\n")
    result = json.loads(call(edit_file, tool_ctx, path="app.py", old_text="b = 2", new_text="b = 20"))
    assert (tool_ctx.workspace / "app.py").read_text() == "a = 1\nb = 20\nc = 3\n"
    assert result["line"] == 2
    assert recorded_artifacts(tool_ctx)[0]["path"] == "app.py"


def test_edit_file_refuses_absent_and_ambiguous_text(tool_ctx: ToolContext) -> None:
    (tool_ctx.workspace / "app.py").write_text("x = 1\nx = 1\n")
    with pytest.raises(ToolError, match="not found"):
        call(edit_file, tool_ctx, path="app.py", old_text="y = 1", new_text="y = 2")
    with pytest.raises(ToolError, match="occurs 2 times"):
        call(edit_file, tool_ctx, path="app.py", old_text="x = 1", new_text="x = 2")
    with pytest.raises(ToolError, match="empty"):
        call(edit_file, tool_ctx, path="app.py", old_text="", new_text="x")
    assert (tool_ctx.workspace / "app.py").read_text() == "x = 1\nx = 1\n"
    assert recorded_artifacts(tool_ctx) == []


def test_model_schema_hides_the_context() -> None:
    for tool in (read_file, list_files, write_file, edit_file):
        assert "ctx" not in tool.tool_call_schema.model_json_schema()["properties"]
