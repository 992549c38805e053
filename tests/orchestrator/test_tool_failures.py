"""One tool-result contract: every tool's failure is recorded as ``error`` (row, event and message), never as
``ok``; an unusable input also raises the signal that stops the step for a human."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.config import Settings
from orchestrator.context import RunContext
from orchestrator.db import session_scope
from orchestrator.db.missions import create_mission
from orchestrator.db.models import Event, ToolCall
from orchestrator.db.schema import upgrade
from orchestrator.executor import execute_tool_call
from orchestrator.journal import Journal
from orchestrator.mission import parse_mission
from tools.registry import all_tools

MISSING = "no/such/file.csv"
FAILING_CALLS: dict[str, dict[str, Any]] = {
    # Each tool, with arguments a confused model might send: the failure path of every tool.
    "align_data": {"model_path": "models/none", "reference_path": MISSING},
    "bash": {"command": "sleep 5", "timeout_s": 0.5},
    "build_container": {"config_path": "README.md/config.yaml"},
    "docs_lookup": {"symbol": "no_such_package_xyz.nothing"},
    "edit_file": {"path": MISSING, "old_text": "a", "new_text": "b"},
    "estimate_capacity": {"config_path": MISSING},
    "evaluate_model": {"model_path": "models/none", "reference_path": MISSING},
    "export_onnx_model": {"model_path": "models/none", "data_path": MISSING},
    "fingerprint_dataset": {"path": MISSING},
    "generate_batch_pipeline": {"config_path": MISSING},
    "generate_inference_service": {"model_path": "models/none", "sample_data_path": MISSING},
    "inspect_model": {"path": "models/none"},
    "list_files": {"path": "no/such/folder"},
    "load_test_service": {"requests": 100},
    "locate_inputs": {"inputs": None},
    "profile_dataset": {"path": MISSING},
    "read_file": {"path": MISSING},
    "register_model": {"model_path": "models/none"},
    "retrain_candidate": {"model_path": "models/none", "reference_path": MISSING, "current_path": MISSING},
    "review_scoring_interface": {"config_path": MISSING},
    "run_tests": {"path": "tests/no_such_test.py"},
    "security_scan": {"path": MISSING},
    "task_create": {"title": ""},
    "task_list": {},
    "task_update": {"task_id": 999, "status": "done"},
    "web_search": {"query": "x", "max_results": 0},
    "write_ci_workflow": {"constraints": "not a list"},
    "write_deployment_notes": {"constraints": {"a": 1}},
    "write_design_doc": {"objective": "x", "serving_mode": "batch", "constraints": "not a list", "inputs": []},
    "write_file": {"path": "README.md/child.txt", "content": "x"},
    "write_manifest": {"model_path": "models/none"},
    "write_mission_report": {"objective": "x", "checks": "not a mapping"},
    "write_schedule": {"config_path": "README.md", "image": "x"},
    "write_stream_design": {"objective": "x", "constraints": "not a list"},
    "generate_streaming_consumer": {"config_path": MISSING},
    "estimate_stream_capacity": {"config_path": MISSING},
    "write_stream_deployment": {"config_path": MISSING},
    "generate_training_pipeline": {"model_path": "models/none", "reference_path": MISSING, "current_path": MISSING},
    "run_training_pipeline": {"config_path": MISSING},
    "build_feature_store": {"config_path": MISSING},
    "run_ci_workflow": {"path": ".github/workflows/none.yml"},
    "compare_shadow": {"model_path": "models/none", "candidate_path": "models/none-candidate", "current_path": MISSING},
}


def test_every_registered_tool_has_a_failure_case_here() -> None:
    assert set(FAILING_CALLS) == set(all_tools())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    root = tmp_path_factory.mktemp("failures")
    workspace = root / "ws"
    workspace.mkdir()
    (workspace / "README.md").write_text("an empty workspace\n")
    settings = Settings(home=root / "home", database_url=f"sqlite:///{root / 'o.db'}", _env_file=None,
                        tavily_api_key=None)
    upgrade(settings.resolved_database_url)
    spec = parse_mission("Mission: score the model.\nInputs: models/none/, data/reference.csv")
    with session_scope(settings.resolved_database_url) as session:
        mission_id = create_mission(session, text=spec.text, spec=spec.model_dump(mode="json"),
                                    workspace=str(workspace)).id
    return RunContext(settings=settings, agents={}, mission_id=mission_id, mission=spec, workspace=workspace,
                      model_factory=lambda *_: None)  # type: ignore[arg-type,return-value]


NO_FAILURE_PATH = {"task_list": "takes no arguments and only reads the mission's own rows"}


@pytest.mark.parametrize("tool", sorted(set(FAILING_CALLS) - set(NO_FAILURE_PATH)))
def test_a_failing_tool_is_recorded_as_an_error(tool: str, run: RunContext) -> None:
    call_id = f"fail-{tool}"
    outcome = execute_tool_call({"name": tool, "args": FAILING_CALLS[tool], "id": call_id, "type": "tool_call"},
                                run=run, agent="ml-engineer", step="align", delegation_id=None,
                                allowed=all_tools(), journal=Journal(run.database_url, run.mission_id))
    with session_scope(run.database_url) as session:
        row = session.scalar(select(ToolCall).where(ToolCall.call_id == call_id))
        event = next(e for e in session.scalars(select(Event).where(Event.mission_id == run.mission_id,
                                                                    Event.kind == "tool.called"))
                     if e.payload["call_id"] == call_id)
    assert (row.status, event.payload["status"], outcome.message.status) == ("error", "error", "error"), row.result
    # The model reads what failed: an error text, or the tool's own result that says it failed.
    assert row.result.startswith(("Error: ", '{"')) and "Traceback" not in row.result
