"""`orchestrator demo`, as the README runs it: the example mission on a generated workspace, to the end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# The module's mission runs in the first test's setup: the six steps with Feast, the shadow comparison and the local
# CI run take 3-5 minutes on two busy cores, past the default per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.mission, pytest.mark.timeout(900)]


def _env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ORCH_")}
    env["ORCH_HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    root = tmp_path_factory.mktemp("demo")
    workspace = root / "ws"
    result = subprocess.run([sys.executable, "-m", "orchestrator.cli", "demo", "--workspace", str(workspace), "--json"],
                            capture_output=True, text=True, env=_env(root / "home"), timeout=840)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout), workspace, root / "home"


def test_all_six_steps_done_with_each_sub_agent_and_an_intact_chain(demo: tuple[dict[str, Any], Path, Path]) -> None:
    view, _, home = demo
    assert view["status"] == "completed"
    steps = {s["name"]: s["status"] for s in view["steps"]}
    assert all(steps[name] == "done" for name in ("align", "design", "implement", "evaluate", "package", "release"))
    # The report's checks agree with the status: a completed mission has no failed check.
    assert view["checks"] and all(c["status"] == "pass" for c in view["checks"]), view["checks"]
    assert {"Procedure steps", "Evaluation", "ONNX parity"} <= {c["name"] for c in view["checks"]}
    assert {d["to_agent"] for d in view["delegations"]} == {"data-scientist", "devops-engineer", "security-expert",
                                                           "backend-developer"}
    assert all(d["from_agent"] == "ml-engineer" and d["status"] == "completed" for d in view["delegations"])
    assert [(a["kind"], a["status"], a["decided_by"]) for a in view["approvals"]] == [("release", "approved", "demo")]
    verify = subprocess.run([sys.executable, "-m", "orchestrator.cli", "audit", "verify", view["id"]],
                            capture_output=True, text=True, env=_env(home), timeout=120)
    assert verify.returncode == 0 and "intact" in verify.stdout


def test_evaluation_flags_exactly_the_injected_shift_and_the_precision_alert(
        demo: tuple[dict[str, Any], Path, Path]) -> None:
    view, workspace, _ = demo
    evaluation = json.loads((workspace / "reports/evaluation.json").read_text())
    drifted = sorted(f["name"] for f in evaluation["drift"]["features"] if f["drifted"])
    assert drifted == sorted(view["injected_shift"]) and drifted
    precision = next(a for a in evaluation["alerts"] if a["name"] == "precision_drop")
    assert precision["fired"] and precision["value"] < precision["threshold"]
    assert not any("injected" in path.name for path in workspace.rglob("*"))  # the answer is not in the workspace
    html = (workspace / "reports/evaluation.html").read_text()
    assert "<svg" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)  # self-contained: nothing fetched from a CDN


def test_deliverables_are_valid_and_recorded_with_their_producer(demo: tuple[dict[str, Any], Path, Path]) -> None:
    view, workspace, _ = demo
    dry_run = subprocess.run([sys.executable, "-m", "pipelines.batch_scoring", "--dry-run"], cwd=workspace,
                             capture_output=True, text=True, timeout=300)
    assert dry_run.returncode == 0, dry_run.stderr[-2000:]
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests"], cwd=workspace, capture_output=True,
                           text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-2000:]
    parity = json.loads((workspace / "reports/onnx-parity.json").read_text())
    assert parity["max_abs_score_diff"] <= 1e-5 and parity["labels_identical"]
    assert json.loads((workspace / "reports/hadolint.json").read_text()) == {"exit_code": 0, "threshold": "warning",
                                                                            "issues": []}
    notes = (workspace / "docs/deployment-notes.md").read_text()
    for heading in ("Rollout", "Rollback", "Monitoring", "Resources and cost"):
        assert f"## {heading}" in notes
    recorded = {a["path"]: a for a in view["artifacts"]}
    for path in ("pipelines/batch_scoring/__main__.py", "tests/test_batch_scoring.py", "monitoring/alerts.yaml",
                 "Dockerfile", "registry/index.json", "reports/reproducibility-manifest.json", "deploy/cronjob.yaml",
                 ".github/workflows/batch-scoring.yml", "docs/deployment-notes.md", "reports/mission-report.md"):
        assert path in recorded, path
        assert recorded[path]["agent"] and recorded[path]["step"]
    # A batch mission stays a batch mission: no consumer, no Deployment, no stream checks.
    assert not any((workspace / p).exists() for p in ("pipelines/streaming_scoring", "deploy/stream-deployment.yaml"))
    assert not [c["name"] for c in view["checks"] if c["name"].startswith(("Stream", "Consumer", "Redis"))]
    onnx = next(p for p in recorded if p.endswith("model.onnx"))
    assert (recorded[onnx]["agent"], recorded[onnx]["step"]) == ("ml-engineer", "package")
    assert (recorded["docs/deployment-notes.md"]["agent"], recorded["docs/deployment-notes.md"]["step"]) == \
        ("devops-engineer", "release")


def test_resuming_the_finished_mission_is_a_clear_error(demo: tuple[dict[str, Any], Path, Path]) -> None:
    view, _, home = demo
    again = subprocess.run([sys.executable, "-m", "orchestrator.cli", "resume", view["id"]], capture_output=True,
                           text=True, env=_env(home), timeout=120)
    assert again.returncode == 4 and "Traceback" not in again.stderr
    assert again.stderr.strip() == f"error: mission {view['id']} is already completed; nothing to run"


def test_the_recorded_mission_replays_with_no_model_and_no_tool(demo: tuple[dict[str, Any], Path, Path]) -> None:
    """``orchestrator replay`` re-drives the whole demo mission from its record and takes the same path."""
    view, _, home = demo
    replayed = subprocess.run([sys.executable, "-m", "orchestrator.cli", "replay", view["id"], "--json"],
                              capture_output=True, text=True, env=_env(home), timeout=300)
    assert replayed.returncode == 0, replayed.stdout[-2000:] + replayed.stderr[-2000:]
    report = json.loads(replayed.stdout)
    assert report["reproduced"] and report["recorded"].startswith("completed"), report
    assert report["compared"] >= 20 and report["step"] is None


def test_missions_show_and_audit_read_the_same_records(demo: tuple[dict[str, Any], Path, Path]) -> None:
    view, _, home = demo
    shown = subprocess.run([sys.executable, "-m", "orchestrator.cli", "missions", "show", view["id"], "--json"],
                           capture_output=True, text=True, env=_env(home), timeout=120)
    assert shown.returncode == 0
    again = json.loads(shown.stdout)
    for field in ("id", "status", "steps", "delegations", "approvals", "artifacts", "tasks"):
        assert again[field] == view[field]
    [task] = view["tasks"]  # opened in align, closed by the report with links to the deliverables
    assert (task["agent"], task["step"], task["status"]) == ("ml-engineer", "align", "done")
    assert "reports/mission-report.md" in task["links"]
    review = subprocess.run([sys.executable, "-m", "orchestrator.cli", "audit", view["id"]], capture_output=True,
                            text=True, env=_env(home), timeout=120)
    assert review.returncode == 0
    for agent in ("data-scientist", "devops-engineer", "security-expert", "backend-developer"):
        assert f"-> {agent}" in review.stdout
    assert "intact" in review.stdout.splitlines()[-1]


def test_the_demo_records_a_check_for_each_part_of_the_job(demo: tuple[dict[str, Any], Path, Path]) -> None:
    """Drift dashboard, shadow comparison, training pipeline, feature store, local CI run, GPU decision: each
    computed by a tool and a passed row of the report's checks."""
    from tools.ml.feature_store import feast_python

    view, workspace, _ = demo
    checks = {c["name"]: c for c in view["checks"]}
    ci = "CI pipeline run (`.github/workflows/batch-scoring.yml`, locally)"
    for name in ("Drift dashboard", "Shadow comparison", "Training pipeline", "Feature store (Feast)", ci,
                 "GPU scheduling"):
        assert checks[name]["status"] == "pass", checks.get(name)
    assert checks["Shadow comparison"]["detail"].startswith("promote on 2000 rows")
    assert ("the generated test re-ran it: 10 passed, 0 failed, 0 skipped (the local CI run's step 'Tests', exit code 0)"
            in checks["Training pipeline"]["detail"])
    assert checks[ci]["detail"].startswith("4 of 4 run: steps passed, 4 uses: steps not run locally")
    assert checks["GPU scheduling"]["detail"].startswith("none needed")
    store = checks["Feature store (Feast)"]["detail"]
    if feast_python()[0] is not None:  # with the extra installed (scripts/test installs it into .venv/feast)
        assert "6000 rows materialised into SQLite" in store, store
        assert re.search(r"(\d+) of \1 rows read back, max abs diff 0\.0;", store), store
        assert "scoring dry run from the store: exit code 0" in store, store
        assert json.loads((workspace / "reports/feature-store.json").read_text())["status"] == "ok"
    else:  # without it the step says so, and why
        assert store.startswith("skipped: Feast is not installed"), store
    shadow = json.loads((workspace / "reports/shadow-comparison.json").read_text())
    assert shadow["decision"] == "promote" and shadow["metrics"]["precision"]["interval"]["low"] > 0
    run = json.loads((workspace / "reports/ci-run.json").read_text())
    assert run["all_run_steps_passed"] and run["run_steps"] == 4
    notes = (workspace / "docs/deployment-notes.md").read_text()
    assert "Shadow comparison (`reports/shadow-comparison.json`)" in notes and "- GPU: none needed" in notes


def test_the_dashboard_is_served_and_grows_with_each_production_run(demo: tuple[dict[str, Any], Path, Path]) -> None:
    from fastapi.testclient import TestClient

    from orchestrator.api.app import create_app
    from orchestrator.api.keys import create_key
    from orchestrator.config import Settings
    from orchestrator.db import session_scope

    view, workspace, home = demo
    history = workspace / "monitoring/history.jsonl"
    rows = [json.loads(line) for line in history.read_text().splitlines()]
    # The evaluation ran twice on the same batch and model (before and after the retraining): one row.
    assert [(r["batch"], r["source"]) for r in rows] == [("current", "evaluation")]
    assert set(rows[0]["alerts_fired"]) == {"feature_drift", "precision_drop"}
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'orchestrator.db'}", _env_file=None)
    with session_scope(settings.resolved_database_url) as session:
        key = create_key(session, role="auditor", name="dashboard-reader")[1]
    with TestClient(create_app(settings, start_workers=False)) as client:
        served = client.get(f"/api/v1/missions/{view['id']}/monitoring", headers={"Authorization": f"Bearer {key}"})
    assert served.status_code == 200 and served.json()["rows"] == rows
    assert served.json()["dashboard"] == "reports/dashboard.html"

    reference = __import__("pandas").read_csv(workspace / "data/reference.csv")
    (workspace / "data/batches").mkdir()
    for night in range(1, 4):
        batch = reference.sample(n=1000, random_state=night).assign(record_id=lambda f, n=night: f["record_id"] + n * 10**7)
        batch.to_csv(workspace / f"data/batches/night-{night}.csv", index=False)
        scored = subprocess.run([sys.executable, "-m", "pipelines.batch_scoring", "--input",
                                 f"data/batches/night-{night}.csv"], cwd=workspace, capture_output=True, text=True,
                                timeout=300)
        assert scored.returncode == 0, scored.stderr[-2000:]
    grown = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(grown) == len(rows) + 3 and [r["batch"] for r in grown[-3:]] == ["night-1", "night-2", "night-3"]
    page = (workspace / "reports/dashboard.html").read_text()
    chart = re.search(r'<svg class="metric-chart" data-name="precision".*?</svg>', page, re.S).group(0)
    assert chart.count('<circle class="point') == len(grown)
    assert chart.count('data-state="fired"') == sum(r["metrics"]["precision"]["fired"] for r in grown) >= 1
