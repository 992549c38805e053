"""The ``Read``, ``Write`` and ``Edit`` capabilities: workspace files, confined and size-capped."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from langchain_core.tools import tool

from orchestrator.errors import ToolError
from tools.context import Ctx, ToolContext
from tools.workspace import relative_to_workspace, resolve_in_workspace

__all__ = ["read_file", "list_files", "write_file", "edit_file", "artifact_kind", "CAPABILITIES"]

# SkipValidation: pydantic cannot (and must not) rebuild the context; the tool needs the caller's object.

_MAX_LIST_ENTRIES = 500
_SKIPPED_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".pytest_cache", ".mypy_cache",
                 ".ruff_cache", ".ipynb_checkpoints"}
_KINDS = {
    "code": {".py", ".pyi", ".sh", ".bash", ".ipynb", ".js", ".ts", ".sql", ".r", ".scala", ".java", ".go",
             ".rs", ".c", ".cpp", ".h", ".dockerfile"},
    "config": {".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".env", ".json", ".lock"},
    "doc": {".md", ".rst", ".txt", ".adoc"},
    "data": {".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".feather", ".npy", ".npz", ".arrow", ".xml"},
    "model": {".joblib", ".pkl", ".pickle", ".onnx", ".pt", ".safetensors", ".h5"},
    "report": {".html", ".pdf"},
}
_CODE_NAMES = {"dockerfile", "makefile", "containerfile"}


def artifact_kind(path: str) -> str:
    """The artifact kind recorded for a workspace file, inferred from its name and folder."""
    pure = PurePosixPath(path.lower())
    if any(part in {"reports", "report"} for part in pure.parts[:-1]) or pure.stem.startswith("report"):
        return "report"
    if pure.name in _CODE_NAMES:
        return "code"
    if pure.suffix == ".json" and any(part in {"data", "datasets"} for part in pure.parts[:-1]):
        return "data"
    for kind, suffixes in _KINDS.items():
        if pure.suffix in suffixes:
            return kind
    return "file"


def _read_text(target: Path, rel: str, limit: int) -> str:
    if target.is_dir():
        raise ToolError(f"{rel!r} is a directory: use list_files to see what it holds")
    if not target.exists():
        raise ToolError(f"{rel!r} does not exist: use list_files to find the right path")
    with target.open("rb") as handle:
        data = handle.read(limit + 1)
    if b"\x00" in data[:8192]:
        raise ToolError(f"{rel!r} is a binary file ({target.stat().st_size} bytes): inspect it with bash instead")
    if len(data) > limit:
        raise ToolError(
            f"{rel!r} is larger than max_read_bytes ({limit}); read parts of it with bash (head, sed -n)")
    return data.decode("utf-8", "replace")


@tool(parse_docstring=True)
def read_file(path: str, offset_line: int = 0, max_lines: int = 400, *, ctx: Ctx) -> str:
    """Read a text file from the workspace, a window of lines at a time.

    The result starts with a header line `# <path>: lines A-B of N` (saying how to read the next
    window when there is more), followed by the file's text exactly as stored.

    Args:
        path: File path relative to the workspace root, e.g. `pipelines/batch_scoring.py`.
        offset_line: Number of lines to skip from the start (0 reads from the first line).
        max_lines: Most lines to return (1-2000); a header says how to read the next window.
    """
    if offset_line < 0 or not 1 <= max_lines <= 2000:
        raise ToolError("offset_line must be >= 0 and max_lines between 1 and 2000")
    target = resolve_in_workspace(ctx.workspace, path)
    rel = relative_to_workspace(ctx.workspace, target)
    lines = _read_text(target, rel, ctx.settings.max_read_bytes).splitlines(keepends=True)
    window = lines[offset_line : offset_line + max_lines]
    end = offset_line + len(window)
    header = f"# {rel}: lines {offset_line + 1 if window else offset_line}-{end} of {len(lines)}"
    if end < len(lines):
        header += f" (more: read_file with offset_line={end})"
    return header + "\n" + "".join(window)


@tool(parse_docstring=True)
def list_files(path: str = ".", *, ctx: Ctx) -> str:
    """List the files under a workspace directory, recursively, with their sizes in bytes.

    Caches and virtualenvs (.git, __pycache__, .venv, node_modules...) are skipped; symlinks are listed
    but not followed. At most 500 entries are returned, one per line: `dir/` for directories,
    `file  <size>` for files, `link -> target` for symlinks.

    Args:
        path: Directory relative to the workspace root; `.` is the root itself.
    """
    root = resolve_in_workspace(ctx.workspace, path)
    rel_root = relative_to_workspace(ctx.workspace, root)
    if not root.exists():
        raise ToolError(f"{path!r} does not exist: list '.' to see the workspace")
    if root.is_file():
        return f"{rel_root}  {root.stat().st_size}"
    ws_root = ctx.workspace.resolve()
    entries: list[str] = []
    # os.walk from the resolved root without following links: every path it yields is a real one inside.
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in dirs + sorted(files):
            full = Path(current) / name
            rel = full.relative_to(ws_root).as_posix()
            if full.is_symlink():
                entries.append(f"{rel} -> {os.readlink(full)}")
            elif full.is_dir():
                entries.append(f"{rel}/")
            else:
                entries.append(f"{rel}  {full.lstat().st_size}")
        if len(entries) > _MAX_LIST_ENTRIES:
            break
    if not entries:
        return f"{rel_root}/ is empty"
    if len(entries) > _MAX_LIST_ENTRIES:
        entries = entries[:_MAX_LIST_ENTRIES] + ["[... more entries: list a subdirectory to see them]"]
    return "\n".join(entries)


def _checked_size(text: str, ctx: ToolContext, rel: str) -> None:
    size = len(text.encode("utf-8"))
    if size > ctx.settings.max_write_bytes:
        raise ToolError(f"content for {rel!r} is {size} bytes, over max_write_bytes ({ctx.settings.max_write_bytes})")


@tool(parse_docstring=True)
def write_file(path: str, content: str, *, ctx: Ctx) -> str:
    """Create or overwrite a text file in the workspace (parent folders are created) and record it as an artifact.

    Returns JSON with the path, size in bytes, sha256 and the artifact kind recorded.

    Args:
        path: File path relative to the workspace root, e.g. `reports/evaluation.md`.
        content: The complete new text of the file.
    """
    target = resolve_in_workspace(ctx.workspace, path, for_write=True)
    rel = relative_to_workspace(ctx.workspace, target)
    if target.is_dir():
        raise ToolError(f"{rel!r} is a directory: give a file path inside it")
    _checked_size(content, ctx, rel)
    ref = ctx.write_text(rel, content, kind=artifact_kind(rel))
    return json.dumps({"path": ref.path, "bytes": ref.size, "sha256": ref.sha256, "kind": ref.kind})


@tool(parse_docstring=True)
def edit_file(path: str, old_text: str, new_text: str, *, ctx: Ctx) -> str:
    """Replace one exact occurrence of a piece of text in a workspace file and record the new version.

    The old text must appear exactly once (whitespace and indentation included); include enough
    surrounding lines to make it unique. Read the file first to copy the text exactly. Returns JSON
    with the path, the line where the replacement starts, the new size and sha256.

    Args:
        path: File path relative to the workspace root.
        old_text: The exact text to replace; must occur exactly once in the file.
        new_text: The text to put in its place (may be empty to delete).
    """
    if not old_text:
        raise ToolError("old_text is empty: give the exact text to replace (use write_file to create a file)")
    target = resolve_in_workspace(ctx.workspace, path, for_write=True)
    rel = relative_to_workspace(ctx.workspace, target)
    text = _read_text(target, rel, ctx.settings.max_read_bytes)
    count = text.count(old_text)
    if count == 0 and ctx.attempt > 1 and new_text and text.count(new_text) == 1:
        # This very call, interrupted by a crash after its write, already made the edit: it is not made twice.
        index = text.index(new_text)
        ref = ctx.record_file(target, kind=artifact_kind(rel))
        return json.dumps({"path": ref.path, "line": text.count("\n", 0, index) + 1, "bytes": ref.size,
                           "sha256": ref.sha256, "kind": ref.kind, "already_applied": True})
    if count == 0:
        raise ToolError(f"old_text not found in {rel!r}: read_file and copy the exact text, whitespace included")
    if count > 1:
        raise ToolError(f"old_text occurs {count} times in {rel!r}: include more surrounding lines to make it unique")
    index = text.index(old_text)
    updated = text[:index] + new_text + text[index + len(old_text):]
    _checked_size(updated, ctx, rel)
    ref = ctx.write_text(rel, updated, kind=artifact_kind(rel))
    line = text.count("\n", 0, index) + 1
    return json.dumps({"path": ref.path, "line": line, "bytes": ref.size, "sha256": ref.sha256, "kind": ref.kind})


CAPABILITIES = {"Read": [read_file, list_files], "Write": [write_file], "Edit": [edit_file]}
