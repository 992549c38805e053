"""The lead's documents: the design note and the mission report, composed from the mission and the files
the steps wrote (every figure is read or passed in from a tool result, never made up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.tools import tool

from tools.context import Ctx
from orchestrator.constraints import format_duration
from tools.ml.alignment import ALIGNMENT_PATH, mission_constraints
from tools.ml.capacity import COST_PATH
from tools.ml.ci_run import CI_RUN_PATH, ci_check
from tools.ml.dashboard import DASHBOARD_PATH, HISTORY_PATH, check_dashboard
from tools.ml.data import load_config, read_json
from tools.ml.feature_store import FEATURE_REPO, FEATURE_STORE_REPORT, feature_store_check
from tools.ml.gpu import gpu_check
from tools.ml.evaluation import EVALUATION_HTML, EVALUATION_PATH
from tools.ml.model_registry import MANIFEST_PATH
from tools.ml.monitoring import ALERTS_PATH
from tools.ml.packaging import HADOLINT_PATH, PARITY_PATH
from tools.ml.release import NOTES_PATH
from tools.ml.schedule import CI_PATH, SCHEDULE_PATH
from tools.ml.security import SECURITY_PATH
from tools.ml.serving import LOAD_TEST_PATH, REVIEW_PATH, SERVICE_APP, load_test_check
from tools.ml.shadow import SHADOW_PATH, agreement_text
from tools.ml.training import TRAINING_CONFIG, TRAINING_METRICS, TRAINING_TEST, training_check
from tools.ml.stream_release import STREAM_DELIVERABLES, stream_check_rows

__all__ = ["write_design_doc", "write_mission_report", "DESIGN_PATH", "REPORT_PATH"]

DESIGN_PATH = "docs/design.md"
REPORT_PATH = "reports/mission-report.md"
_ARCH = {
    "batch": ["Nightly Kubernetes CronJob runs `python -m pipelines.batch_scoring` on the day's input.",
              "Input read in fixed-size chunks (`chunk_size`): memory is flat in the input size; outputs written to "
              "a `.partial` file and renamed when complete.",
              "Monitoring hooks accumulate drift histograms and confusion counts per chunk and evaluate "
              "`monitoring/alerts.yaml` at the end of every batch."],
    "online": ["FastAPI service (`service/app.py`) behind a load balancer: `/predict` with validated records, "
               "`/health`, `/metrics`.",
               "Requests logged to a feature log; the batch drift/performance evaluation runs daily on that log "
               "against the reference data."],
    "streaming": ["A consumer scores micro-batches from the stream with the same scoring code as the batch job; "
                  "drift windows are accumulated per hour and evaluated with the batch rules."],
}



@tool(parse_docstring=True)
def write_design_doc(objective: str, serving_mode: str, constraints: list[str], inputs: list[str], *,
                     ctx: Ctx) -> str:
    """Write docs/design.md: the inference architecture for the serving mode (batch, online, streaming),
    data and model versions from reports/alignment.json, reproducibility, scaling and configuration.

    Args:
        objective: The mission's objective sentence.
        serving_mode: batch, online or streaming.
        constraints: The mission's constraint sentences.
        inputs: The mission's inputs (paths).
    """
    alignment = read_json(ctx.workspace, ALIGNMENT_PATH)
    parsed = mission_constraints(ctx, constraints)
    config = load_config(ctx.workspace, next((i for i in inputs if i.endswith((".yaml", ".yml"))),
                                             "pipelines/batch-scoring.yaml"))
    model = alignment.get("model") or {}
    lines = ["# Design", "", f"Objective: {objective}", "", f"## Architecture ({serving_mode})", ""]
    lines += [f"- {line}" for line in _ARCH.get(serving_mode, _ARCH["batch"])]
    if serving_mode == "online":
        lines.append("- Latency budget: " + (", ".join(f"{t.percentile} under {t.max_ms:g} ms" for t in parsed.latency)
                                             or "not stated") + ".")
    lines += ["", "## Versions pinned at alignment", ""]
    lines.append(f"- Model `{model.get('name', '?')}` {model.get('version', '?')} ({model.get('format', '?')}), "
                 f"sha256 `{str(model.get('sha256', ''))[:16]}`.")
    for role, fp in (alignment.get("datasets") or {}).items():
        lines.append(f"- {role}: `{fp['path']}`, {fp['rows']} rows, sha256 `{fp['sha256'][:16]}`.")
    lines += ["", "## Acceptance thresholds", ""]
    metrics = ((alignment.get("thresholds") or {}).get("metrics") or {})
    for name, entry in metrics.items():
        if entry.get("limit") is None:
            lines.append(f"- {name}: no limit yet (the reference has no labels to measure a baseline).")
            continue
        bound = "floor" if entry.get("direction", "below") == "below" else "ceiling"
        change = entry.get("relative_drop", entry.get("relative_rise"))
        how = (f"baseline {entry['baseline']}, {change:.0%} {'drop' if bound == 'floor' else 'rise'} allowed"
               if change is not None else f"stated limit; baseline {entry.get('baseline')}")
        lines.append(f"- {name.capitalize()} {bound} {entry['limit']} ({how})"
                     + (f"; a window needs at least {entry['min_labelled_rows']} labelled rows for the alert to be "
                        "meaningful" if entry.get("min_labelled_rows") else "") + ".")
    lines.append("- Drift: PSI >= 0.2 on any feature alerts (0.1 moderate), KS/chi2 reported beside it.")
    if parsed.window_seconds:
        lines.append(f"- Run window: {format_duration(parsed.window_seconds)} "
                     f"({parsed.schedule.text if parsed.schedule else 'scheduled'}).")
    lines += ["", "## Reproducibility", "",
              "- Dataset fingerprints (sha256, rows) and model hash pinned in `reports/alignment.json` and the registry.",
              "- Pinned `requirements.txt`, container image, and `reports/reproducibility-manifest.json` (versions, seeds, hashes).",
              "", "## Scaling and configuration", "",
              f"- Configuration: `pipelines/batch-scoring.yaml` validated with pydantic (chunk size "
              f"{config.get('chunk_size', '?')}, expected volume {config.get('expected_rows_per_night', '?')} rows/night).",
              "- Throughput is measured, not assumed, and extrapolated to the volume (`reports/cost-estimate.json`); "
              "more volume: partition the input and run parallel jobs.", ""]
    ref = ctx.write_text(DESIGN_PATH, "\n".join(lines), kind="doc")
    return json.dumps({"status": "ok", "path": ref.path, "serving_mode": serving_mode})


def _check_rows(workspace: Path, checks: dict[str, Any]) -> list[tuple[str, str, bool]]:
    evaluation, parity = read_json(workspace, EVALUATION_PATH), read_json(workspace, PARITY_PATH)
    hadolint, cost, security = read_json(workspace, HADOLINT_PATH), read_json(workspace, COST_PATH), read_json(workspace, SECURITY_PATH)
    rows = []
    steps = checks.get("steps") or {}
    if isinstance(steps, dict) and steps:
        done = [name for name, o in steps.items() if isinstance(o, dict) and o.get("status") == "done"]
        rows.append(("Procedure steps", f"{len(done)} of {len(steps)} done", len(done) == len(steps)))
        rows += [(f"Step {name}", f"{o.get('status')}: {o.get('reason') or 'no reason given'}", False)
                 for name, o in steps.items() if isinstance(o, dict) and o.get("status") != "done"]
    if "dry_run_exit_code" in checks:
        rows.append(("Dry run `python -m pipelines.batch_scoring --dry-run`", f"exit code {checks['dry_run_exit_code']}",
                     checks["dry_run_exit_code"] == 0))
    for key, label in (("pipeline_tests", "Generated pipeline tests"), ("service_tests", "Generated service tests")):
        if key in checks:
            t = checks[key]
            rows.append((label, f"{t.get('passed')} passed, {t.get('failed')} failed, {t.get('errors')} errors",
                         t.get("failed") == 0 and t.get("errors") == 0 and (t.get("passed") or 0) > 0))
    if evaluation:
        fired = [a["name"] for a in evaluation.get("alerts", []) if a.get("fired")]
        rows.append(("Evaluation", f"status {evaluation.get('status')}; alerts fired: {', '.join(fired) or 'none'}; "
                     f"drifted: {', '.join(evaluation.get('drift', {}).get('drifted', [])) or 'none'}",
                     evaluation.get("status") in ("pass", "candidate_passes")))
    if parity.get("status") in ("ok", "failed"):  # a model with no ONNX form has nothing to compare (a finding)
        rows.append(("ONNX parity", f"max abs diff {parity.get('max_abs_score_diff')}, labels identical "
                     f"{parity.get('labels_identical')}", parity.get("status") == "ok"))
    if hadolint:
        rows.append(("hadolint -t warning", f"exit code {hadolint.get('exit_code')}, {len(hadolint.get('issues', []))} "
                     "issues", hadolint.get("exit_code") == 0))
    if cost:
        rows.append(("Capacity", cost.get("verdict", ""), bool(cost.get("fits"))))
    if security:
        counts = security.get("counts", {})
        rows.append(("Security scan", f"{counts.get('high', 0)} high, {counts.get('medium', 0)} medium",
                     not security.get("blocking")))
    rows += [row for row in (load_test_check(workspace),) if row]  # an online mission's latency against its targets
    rows += stream_check_rows(workspace, checks)  # a streaming mission's consumer, alerts, Deployment
    rows += _issue12_rows(workspace, checks, evaluated=bool(evaluation))
    return rows


def _issue12_rows(workspace: Path, checks: dict[str, Any], *, evaluated: bool) -> list[tuple[str, str, bool]]:
    """The drift dashboard, the shadow comparison, the training pipeline, the feature store, the local CI run."""
    rows = []
    if evaluated or (workspace / HISTORY_PATH).is_file():
        board = check_dashboard(workspace)
        rows.append(("Drift dashboard", f"{board['rows']} batches in `{HISTORY_PATH}`, {board['charts']} charts in "
                     f"`{DASHBOARD_PATH}`, {board['alerts_marked']} fired metric alerts marked, "
                     f"{board['with_alerts']} batch(es) with an alert (drift included)"
                     + (f"; problems: {'; '.join(board['problems'])}" if board["problems"] else ""), board["ok"]))
    for row in (training_check(workspace, checks), feature_store_check(workspace), ci_check(workspace),
                gpu_check(workspace)):
        if row is not None:
            rows.append(row)
    shadow = read_json(workspace, SHADOW_PATH)
    if shadow:
        deltas = ", ".join(f"{name} {m.get('delta'):+.4f}" for name, m in (shadow.get("metrics") or {}).items())
        lat = shadow.get("latency") or {}
        rows.append(("Shadow comparison", f"{shadow.get('decision')} on {(shadow.get('data') or {}).get('rows')} rows: "
                     f"{agreement_text(shadow.get('agreement'))}, {deltas or 'no labels'}; p95 per row "
                     f"{(lat.get('production') or {}).get('p95_ms')} / {(lat.get('candidate') or {}).get('p95_ms')} ms"
                     + (f"; gates not met: {'; '.join(shadow.get('failed_gates') or [])}"
                        if shadow.get("failed_gates") else ""), shadow.get("decision") == "promote"))
    return rows


@tool(parse_docstring=True)
def write_mission_report(objective: str, checks: dict[str, Any] | None = None, *, ctx: Ctx) -> str:
    """Write reports/mission-report.md: every deliverable that exists, linked, and each check's result read
    from the reports (evaluation, parity, hadolint, capacity, security) plus the validation results passed in.

    Args:
        objective: The mission's objective sentence.
        checks: Results of validation commands run in this step, e.g. {"dry_run_exit_code": 0,
            "pipeline_tests": {"passed": 7, "failed": 0, "errors": 0}}, and the procedure's step outcomes
            {"steps": {"align": {"status": "done", "reason": ""}, ...}}.
    """
    checks = checks or {}
    deliverables = [("Batch-scoring package", "pipelines/batch_scoring/__init__.py"),
                    ("Pipeline config", "pipelines/batch-scoring.yaml"), ("Pipeline tests", "tests/test_batch_scoring.py"),
                    ("Alignment", ALIGNMENT_PATH), ("Design", DESIGN_PATH), ("Evaluation (JSON)", EVALUATION_PATH),
                    ("Evaluation (HTML)", EVALUATION_HTML), ("Alert rules", ALERTS_PATH),
                    ("Monitoring history", HISTORY_PATH), ("Drift dashboard", DASHBOARD_PATH),
                    ("Shadow comparison", SHADOW_PATH), ("Training pipeline config", TRAINING_CONFIG),
                    ("Training pipeline test", TRAINING_TEST), ("Training run", TRAINING_METRICS),
                    ("Local CI run", CI_RUN_PATH), ("Feature repository", f"{FEATURE_REPO}/feature_store.yaml"),
                    ("Feature store", FEATURE_STORE_REPORT),
                    ("ONNX model", read_json(ctx.workspace, PARITY_PATH).get("onnx") or "model.onnx"),
                    ("ONNX parity", PARITY_PATH),
                    ("Dockerfile", "Dockerfile"), ("Registry index", "registry/index.json"),
                    ("Reproducibility manifest", MANIFEST_PATH), ("Security review", SECURITY_PATH),
                    ("Scoring interface review", REVIEW_PATH), ("Inference service", SERVICE_APP),
                    ("Service load test", LOAD_TEST_PATH),
                    ("Cost estimate", COST_PATH), ("Schedule", SCHEDULE_PATH), ("CI workflow", CI_PATH),
                    ("Deployment notes", NOTES_PATH), ("Remediation", "reports/remediation.json")]
    deliverables += [d for d in STREAM_DELIVERABLES if (ctx.workspace / d[1]).is_file()]  # streaming only
    present = [(n, p) for n, p in deliverables if (ctx.workspace / p).is_file()]
    missing = [p for n, p in deliverables if not (ctx.workspace / p).is_file()]
    rows = _check_rows(ctx.workspace, checks)
    table = [f"| {name} | {'pass' if ok else 'FAIL'} | {detail} |" for name, detail, ok in rows]
    lines = ["# Mission report", "", f"Objective: {objective}", "", "## Checks", "", "| Check | Result | Detail |",
             "|---|---|---|", *table, "", "## Deliverables", ""]
    lines += [f"- {name}: [`{path}`](../{path})" for name, path in present]
    lines += ["", f"Not produced: {', '.join(f'`{p}`' for p in missing) or 'none'}.", ""]
    ref = ctx.write_text(REPORT_PATH, "\n".join(lines), kind="report")
    failed = [row for row in table if "| FAIL |" in row]
    return json.dumps({"status": "ok", "path": ref.path, "checks": len(table), "failed_checks": failed,
                       "rows": [{"name": name, "status": "pass" if ok else "fail", "detail": detail}
                                for name, detail, ok in rows],
                       "deliverables": len(present), "not_produced": missing})
