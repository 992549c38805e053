"""RunTests: pytest in the sandbox, summarised with exact counts from its JUnit report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import ToolDenied, ToolError
from tools.context import ToolContext
from tools.tests_runner import parse_junit, run_tests

_SUITE = '''
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

def test_pass_1(): assert 1 + 1 == 2
def test_pass_2(): assert "a".upper() == "A"
def test_pass_3(): assert [1, 2] == [1, 2]
def test_fail_1(): assert 1 == 2, "one is not two"
def test_fail_2(): assert {"a": 1} == {"a": 2}
def test_error_1(broken): pass
'''


def run(ctx: ToolContext, **args) -> dict:  # noqa: ANN003
    return json.loads(run_tests.invoke({**args, "ctx": ctx}))


@pytest.fixture
def suite(tool_ctx: ToolContext) -> Path:
    tests = tool_ctx.workspace / "tests"
    tests.mkdir()
    (tests / "test_mixed.py").write_text(_SUITE)
    return tests


def test_counts_are_exact(tool_ctx: ToolContext, suite: Path) -> None:
    result = run(tool_ctx)
    assert {k: result[k] for k in ("passed", "failed", "errors", "skipped", "total")} == {
        "passed": 3, "failed": 2, "errors": 1, "skipped": 0, "total": 6}
    assert result["exit_code"] == 1 and result["sandboxed"] is True and result["timed_out"] is False
    by_test = {f["test"].rsplit("::", 1)[-1]: f for f in result["failures"]}
    assert set(by_test) == {"test_fail_1", "test_fail_2", "test_error_1"}
    assert "one is not two" in by_test["test_fail_1"]["message"]
    assert by_test["test_error_1"]["kind"] == "error" and "fixture exploded" in by_test["test_error_1"]["message"]
    assert list((tool_ctx.workspace / ".orchestrator").iterdir()) == []  # the report does not pile up


def test_extra_args_select_tests(tool_ctx: ToolContext, suite: Path) -> None:
    result = run(tool_ctx, path="tests/test_mixed.py", extra_args="-k pass")
    assert (result["passed"], result["failed"], result["errors"], result["total"]) == (3, 0, 0, 3)
    assert result["exit_code"] == 0


def test_report_and_plugin_options_are_refused(tool_ctx: ToolContext, suite: Path) -> None:
    for extra in ("--junitxml=/tmp/x.xml", "-p evil", "--basetemp=/x"):
        with pytest.raises(ToolError, match="refused"):
            run(tool_ctx, extra_args=extra)


def test_path_outside_is_refused(tool_ctx: ToolContext) -> None:
    with pytest.raises(ToolDenied):
        run(tool_ctx, path="../elsewhere")
    with pytest.raises(ToolError, match="does not exist"):
        run(tool_ctx, path="tests")


def test_usage_error_is_reported(tool_ctx: ToolContext, suite: Path) -> None:
    with pytest.raises(ToolError, match="no report"):
        run(tool_ctx, extra_args="--definitely-not-an-option")


def test_parse_junit_bare_testsuite_with_skip() -> None:
    xml = ('<testsuite tests="2"><testcase classname="t" name="a"><skipped message="later"/></testcase>'
           '<testcase classname="t" name="b"/></testsuite>')
    assert parse_junit(xml) == {"passed": 1, "failed": 0, "errors": 0, "skipped": 1, "total": 2, "failures": []}


def test_the_services_pytest_plugins_stay_out_unless_the_workspace_asks(tool_ctx: ToolContext) -> None:
    """The sandbox's interpreter is the service's: its plugins (xdist, a tracer's) are not the workspace's."""
    tests = tool_ctx.workspace / "tests"
    tests.mkdir()
    (tests / "test_plugins.py").write_text(
        "def test_service_plugins_are_not_loaded(pytestconfig):\n"
        "    assert not pytestconfig.pluginmanager.has_plugin('xdist')\n"
        "    assert not pytestconfig.pluginmanager.has_plugin('langsmith_plugin')\n")
    assert run(tool_ctx)["passed"] == 1
    (tests / "conftest.py").write_text("pytest_plugins = ['anyio']\n")  # asked for by name: loaded
    (tests / "test_asks.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.anyio\n"
        "async def test_runs_on_the_asked_plugin():\n"
        "    assert True\n")
    result = run(tool_ctx)
    assert (result["passed"], result["failed"], result["errors"]) == (2, 0, 0), result

