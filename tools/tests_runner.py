"""The ``RunTests`` capability: pytest in the shell sandbox, summarised from its JUnit XML report."""

from __future__ import annotations

import json
import shlex
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from langchain_core.tools import tool

from orchestrator.errors import ToolError
from tools.context import Ctx
from tools.redaction import redact
from tools.sandbox import run_sandboxed
from tools.workspace import relative_to_workspace, resolve_in_workspace

__all__ = ["run_tests", "parse_junit", "CAPABILITIES"]

# SkipValidation: pydantic cannot (and must not) rebuild the context; the tool needs the caller's object.

_REPORT_DIR = ".orchestrator"
_MAX_FAILURES = 20
_MAX_MESSAGE = 800
# Options that would write outside the workspace-relative report or change what is being reported.
_REFUSED_OPTIONS = ("--junitxml", "--junit-xml", "--basetemp", "--rootdir", "-c", "--confcutdir")


def parse_junit(xml_text: str) -> dict[str, Any]:
    """Counts and failures from a pytest JUnit XML report (``<testsuites>`` or a bare ``<testsuite>``)."""
    root = ET.fromstring(xml_text)
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures: list[dict[str, str]] = []
    for case in root.iter("testcase"):
        name = "::".join(part for part in (case.get("classname", ""), case.get("name", "")) if part)
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "errors"
                message = child.get("message") or ""
                if not message and child.text and child.text.strip():
                    message = child.text.strip().splitlines()[-1]
                failures.append({"test": name, "kind": child.tag, "message": redact(message[:_MAX_MESSAGE])})
                break
            if child.tag == "skipped":
                outcome = "skipped"
        counts[outcome] += 1
    return {**counts, "total": sum(counts.values()), "failures": failures}


@tool(parse_docstring=True)
def run_tests(path: str = "tests", extra_args: str = "", *, ctx: Ctx) -> str:
    """Run the workspace's pytest tests in the sandbox and summarise the outcome.

    Returns JSON with passed, failed, errors, skipped, total, failures (test id and message, at most
    20), exit_code, timed_out and the tail of pytest's output. Runs `python -m pytest` from the workspace
    root with the configured shell time limit; no network.

    Args:
        path: Test file or directory relative to the workspace root, e.g. `tests/test_scoring.py`.
        extra_args: Extra pytest arguments, e.g. `-k scoring -x`. Report and plugin options are refused.
    """
    target = resolve_in_workspace(ctx.workspace, path)
    if not target.exists():
        raise ToolError(f"{path!r} does not exist in the workspace: give a test file or directory")
    try:
        extra = shlex.split(extra_args)
    except ValueError as exc:
        raise ToolError(f"extra_args {extra_args!r} cannot be parsed: {exc}") from None
    refused = [arg for arg in extra if arg.split("=", 1)[0] in _REFUSED_OPTIONS or arg.startswith("-p")]
    if refused:
        raise ToolError(f"extra_args {refused!r} refused: the report location and plugins are fixed")

    report_rel = f"{_REPORT_DIR}/junit-{uuid.uuid4().hex[:12]}.xml"
    report = ctx.workspace / report_rel
    report.parent.mkdir(parents=True, exist_ok=True)
    # The report path is relative to the working directory, the workspace, sandboxed or not.
    argv = ["python", "-m", "pytest", relative_to_workspace(ctx.workspace, target),
            f"--junitxml={report_rel}", "-p", "no:cacheprovider", "-q", *extra]
    result = run_sandboxed(argv, ctx.workspace, ctx.settings)
    try:
        if not report.exists():
            raise ToolError(
                f"pytest produced no report (exit code {result.exit_code}, timed_out={result.timed_out}); "
                f"its output ends with:\n{redact(result.stdout[-2000:])}\n{redact(result.stderr[-2000:])}"
            )
        summary = parse_junit(report.read_text(encoding="utf-8", errors="replace"))
    finally:
        report.unlink(missing_ok=True)
    failures = summary.pop("failures")
    passed = not result.timed_out and not summary.get("failed") and not summary.get("errors") and summary.get("passed")
    return json.dumps({
        **summary,
        "status": "ok" if passed else "error",
        "failures": failures[:_MAX_FAILURES],
        "more_failures": max(len(failures) - _MAX_FAILURES, 0),
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "output_tail": redact(result.stdout[-1500:]),
        "sandboxed": result.sandboxed,
    })


CAPABILITIES = {"RunTests": [run_tests]}
