"""Release: rollout plan with gates, rollback steps, monitoring setup and sizing, as
``docs/deployment-notes.md``, every figure read from the files the earlier steps wrote and every schedule,
window and budget from the mission's constraints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from langchain_core.tools import tool

from orchestrator.constraints import ConstraintSet
from tools.context import Ctx
from tools.ml.alignment import ALIGNMENT_PATH
from tools.ml.capacity import COST_PATH
from tools.ml.data import load_config, read_json
from tools.ml.evaluation import EVALUATION_PATH
from tools.ml.model_registry import MANIFEST_PATH
from tools.ml.monitoring import ALERTS_PATH
from tools.ml.packaging import PARITY_PATH
from tools.ml.schedule import CI_PATH, RETRAIN_SCHEDULE_PATH, SCHEDULE_PATH, release_constraints
from tools.ml.shadow import SHADOW_PATH

__all__ = ["deployment_notes", "write_deployment_notes", "NOTES_PATH"]

NOTES_PATH = "docs/deployment-notes.md"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("—" if value is None else str(value))


def _shadow_gate(shadow: dict[str, Any]) -> str:
    agreement = (shadow.get("agreement") or {}).get("rate")
    return (f"decision **{shadow.get('decision')}** on {(shadow.get('data') or {}).get('rows')} rows, agreement "
            f"{_fmt(agreement)}" + "".join(f", {name} {m.get('delta'):+.4f}" for name, m in
                                           (shadow.get("metrics") or {}).items() if m.get("monitored")))


def _gpu_lines(gpu: dict[str, Any]) -> list[str]:
    """The GPU decision: what scheduling one takes and what it costs, or why none is needed."""
    if not gpu:
        return []
    if not gpu.get("needed"):
        return [f"- GPU: none needed: {'; '.join(gpu.get('reasons') or [])}."]
    cost = gpu.get("cost") or {}
    selector = ", ".join(f"`{k}={v}`" for k, v in (gpu.get("node_selector") or {}).items())
    return [f"- GPU: 1 × {str(gpu.get('type')).upper()} ({gpu.get('type_source')}) because "
            f"{'; '.join(gpu.get('reasons') or [])}. The CronJob requests `nvidia.com/gpu: 1`, selects nodes with "
            f"{selector} and tolerates the `nvidia.com/gpu:NoSchedule` taint.",
            f"- GPU cost: {cost.get('per_run_usd')} USD per run, {cost.get('per_month_usd')} USD per month at "
            f"{cost.get('gpu_hour_usd')} USD per GPU-hour ({cost.get('assumption')}; {cost.get('note')})."]


def shadow_lines(shadow: dict[str, Any]) -> list[str]:
    """The shadow comparison's figures for the validation status (none when no candidate was compared)."""
    if not shadow:
        return []
    lines = [f"- Shadow comparison (`{SHADOW_PATH}`), candidate `{(shadow.get('candidate') or {}).get('path')}` vs "
             f"production `{(shadow.get('production') or {}).get('path')}` on {(shadow.get('data') or {}).get('which')}: "
             f"agreement {_fmt((shadow.get('agreement') or {}).get('rate'))}; decision **{shadow.get('decision')}**."]
    for name, m in (shadow.get("metrics") or {}).items():
        interval = m.get("interval") or {}
        lines.append(f"  - {name}: production {_fmt(m.get('production'))}, candidate {_fmt(m.get('candidate'))}, "
                     f"difference {m.get('delta'):+.4f}"
                     + (f" (95% paired bootstrap interval [{interval['low']:+.4f}, {interval['high']:+.4f}])"
                        if interval else "") + ("; monitored" if m.get("monitored") else "") + ".")
    for who in ("production", "candidate"):
        lat = (shadow.get("latency") or {}).get(who) or {}
        lines.append(f"  - Latency, {who}: p50 {_fmt(lat.get('p50_ms'))} ms, p95 {_fmt(lat.get('p95_ms'))} ms per row "
                     f"({lat.get('single_row_calls')} one-row calls); {lat.get('rows_per_second')} rows/s on the batch.")
    for gate in shadow.get("gates") or []:
        lines.append(f"  - Gate {'met' if gate.get('passed') else 'NOT met'}: {gate.get('gate')} — {gate.get('detail')}.")
    return lines


def _metric_gates(alignment: dict[str, Any]) -> str:
    """The canary's metric gates, from the thresholds agreed at alignment (floors and ceilings)."""
    gates = []
    for metric, entry in ((alignment.get("thresholds") or {}).get("metrics") or {}).items():
        if not isinstance(entry, dict):
            continue
        if entry.get("floor") is not None:
            rows = entry.get("min_labelled_rows")
            gates.append(f"{metric} ≥ {_fmt(entry['floor'])}"
                         + (f" on a labelled window of ≥ {_fmt(rows)} rows" if rows is not None else ""))
        if entry.get("ceiling") is not None:
            gates.append(f"{metric} ≤ {_fmt(entry['ceiling'])}")
    return "; ".join(gates) or "metric thresholds not agreed yet (see `reports/alignment.json`)"


def _constraint_lines(cs: ConstraintSet, rules: list[dict[str, Any]]) -> list[str]:
    lines = ["## Mission constraints", ""]
    lines += [f"- {line}." for line in cs.summary()] or ["- None stated: defaults apply (below)."]
    monitored = {r.get("name") for r in rules}
    missing = [r for r in cs.alerts if r.name not in monitored]
    if missing:
        lines.append("- Alert rules the mission asks for that `monitoring/alerts.yaml` does not hold yet: "
                     + ", ".join(f"`{r.name}` ({r.describe()})" for r in missing) + ".")
    if cs.notes:
        lines += ["", "Assumptions made reading them:", ""] + [f"- {note}." for note in cs.notes]
    if cs.not_understood:
        lines += ["", "**Not understood, to be confirmed with the requester** (not applied):", ""]
        lines += [f"- “{item}”" for item in cs.not_understood]
    return [*lines, ""]


def deployment_notes(workspace: Path, *, config_path: str,
                     constraints: ConstraintSet | None = None) -> tuple[str, list[str]]:
    """The notes' markdown and the list of inputs that were missing (said in the notes, not invented)."""
    config = load_config(workspace, config_path)
    cost, evaluation = read_json(workspace, COST_PATH), read_json(workspace, EVALUATION_PATH)
    alignment, parity = read_json(workspace, ALIGNMENT_PATH), read_json(workspace, PARITY_PATH)
    index = read_json(workspace, "registry/index.json")
    rules_file = workspace / ALERTS_PATH
    rules = (yaml.safe_load(rules_file.read_text()) or {}).get("rules", []) if rules_file.is_file() else []
    missing = [rel for rel, doc in ((COST_PATH, cost), (EVALUATION_PATH, evaluation), (ALIGNMENT_PATH, alignment),
                                    (PARITY_PATH, parity)) if not doc]
    name = str(config.get("name") or "batch-scoring")
    model = (evaluation.get("model") or alignment.get("model") or {})
    versions = sorted((index.get("models") or {}).get(model.get("name", ""), {}))
    current_version = versions[-1] if versions else model.get("version", "?")
    cs = constraints or ConstraintSet()
    plan = cs.run_plan(config.get("schedule"))
    lines = [f"# Deployment notes: {name}", "",
             f"Model `{model.get('name', '?')}` version {current_version} (sha256 `{str(model.get('sha256', ''))[:12]}`), "
             f"scored {plan.schedule_text} by `python -m pipelines.batch_scoring` ({config_path}); each run must "
             f"finish within {plan.window_text} (schedule from the {plan.sources['schedule']}, window from the "
             f"{plan.sources['window']}).", ""]
    if missing:
        lines += ["> Inputs not available when these notes were written: " + ", ".join(f"`{m}`" for m in missing), ""]
    lines += _constraint_lines(cs, rules)
    lines += ["## Validation status", ""]
    if evaluation:
        fired = [a["name"] for a in evaluation.get("alerts", []) if a.get("fired")]
        lines.append(f"- Evaluation status **{evaluation.get('status')}**; alerts fired: {', '.join(fired) or 'none'}; "
                     f"drifted features: {', '.join(evaluation.get('drift', {}).get('drifted', [])) or 'none'}.")
        if evaluation.get("candidate"):
            cand = evaluation["candidate"]
            lines.append(f"- Retrained candidate `{cand.get('path')}` {'passes' if cand.get('passes') else 'fails'} "
                         f"the thresholds (precision {_fmt((cand.get('performance') or {}).get('precision'))}).")
    if parity.get("status") == "unsupported":
        lines.append(f"- No ONNX form ({parity.get('reason')}): the image serves `{parity.get('source')}`.")
    elif parity:
        lines.append(f"- ONNX parity {parity.get('status')}: max |score diff| {parity.get('max_abs_score_diff')}, "
                     f"labels identical: {parity.get('labels_identical')}.")
    shadow = read_json(workspace, SHADOW_PATH)
    lines += shadow_lines(shadow)
    lines += ["", "## Rollout: shadow → canary → promote", "",
              "| Stage | What runs | Gate to pass before the next stage |", "|---|---|---|",
              f"| Shadow (≥ 3 runs) | New image scores the same input beside production; outputs to a shadow path, "
              f"nothing consumed | dry run and tests green in CI; no new `feature_drift` alert; alert rate within "
              f"{_fmt((alignment.get('thresholds') or {}).get('alert_rate', {}).get('ceiling'))}"
              + (f"; offline shadow already run: {_shadow_gate(shadow)}" if shadow else "") + " |",
              f"| Canary (≥ 2 runs) | New image serves 10% of partitions; production model the rest | "
              f"{_metric_gates(alignment)}; run finishes inside the {plan.window_text} window |",
              "| Promote | New image for all partitions; registry stage set to `production` | canary gates held; "
              "on-call sign-off recorded |", ""]
    lines += ["## Rollback (a few minutes)", "",
              f"1. Pause the schedule: `kubectl patch cronjob {name} -p '{{\"spec\":{{\"suspend\":true}}}}'`.",
              f"2. Point it at the previous image: `kubectl set image cronjob/{name} scorer={name}:<previous tag>` "
              "(the previous version is in `registry/index.json`).",
              "3. In `registry/index.json`, set the failed version's stage to `rolled_back` and the previous one to `production`.",
              f"4. Resume: `kubectl patch cronjob {name} -p '{{\"spec\":{{\"suspend\":false}}}}'`; re-run tonight's batch "
              f"by hand if needed: `kubectl create job --from=cronjob/{name} {name}-rerun`.",
              "5. Check `outputs/metrics.json` / the `batch_scoring_*` gauges: rows scored equals the input, no alert fired.", ""]
    lines += ["## Monitoring and alert thresholds", "",
              f"Rules in `{ALERTS_PATH}`, checked by the pipeline's hooks on every batch (logged as WARNING, written to "
              "`outputs/alerts.json`, and exported as `batch_scoring_alert_fired` gauges in `outputs/metrics.prom`).", "",
              "| Alert | Threshold | Fires when |", "|---|---|---|"]
    lines += [f"| {r['name']} | {_fmt(r.get('threshold'))} | {r.get('fires_when', '')} |" for r in rules]
    lines += _runbook(rules, name=name, retrain_job=(workspace / RETRAIN_SCHEDULE_PATH).is_file())
    lines += ["", "## Resources and cost", ""]
    if cost:
        measured = cost.get("measured") or {}
        lines += [f"- Measured throughput: {measured.get('rows_per_second')} rows/s over {measured.get('rows')} rows "
                  f"({measured.get('method')}).",
                  f"- {cost.get('verdict')}.",
                  f"- Memory: peak {measured.get('peak_rss_mb')} MiB measured; request {cost.get('memory_request_mb')} MiB "
                  "(flat in input size: chunked scoring).",
                  f"- Cost: {cost['cost']['per_run_usd']} USD per run, {cost['cost']['per_month_usd']} USD per month "
                  f"at {cost['cost']['vcpu_hour_usd']} USD per vCPU-hour ({cost['cost']['assumption']})."]
        if (cost.get("budget") or {}).get("verdict"):
            lines.append(f"- Budget: {cost['budget']['verdict']}.")
        lines += _gpu_lines(cost.get("gpu") or {})
    else:
        lines.append("- No measured estimate yet: run `estimate_capacity`.")
    lines += ["", "## Artefacts", "",
              f"- Schedule: `{SCHEDULE_PATH}` (cron `{plan.cron}` {plan.timezone}, {plan.schedule_text}; "
              f"activeDeadlineSeconds {plan.window_seconds}).",
              *([f"- Retraining: `{RETRAIN_SCHEDULE_PATH}` (`python -m pipelines.training`, cron "
                 f"`{cs.retraining.cron}` {cs.retraining.timezone}, {cs.retraining.text})."]
                if cs.retraining and (workspace / RETRAIN_SCHEDULE_PATH).is_file() else []),
              f"- CI: `{CI_PATH}`.", "- Image: `Dockerfile` (non-root, pinned `requirements.txt`).",
              f"- Registry: `registry/index.json`; reproducibility: `{MANIFEST_PATH}`.",
              f"- Evaluation: `{EVALUATION_PATH}`, `reports/evaluation.html`.", ""]
    return "\n".join(lines), missing


def _runbook(rules: list[dict[str, Any]], *, name: str, retrain_job: bool) -> list[str]:
    """The on-call runbook: for each alert rule in force, where to look first and what to do then."""
    retrain = (f"`kubectl create job --from=cronjob/{name}-retrain {name}-retrain-now`" if retrain_job else
               "`python -m pipelines.training --config pipelines/training.yaml`")
    rollout = "then shadow → canary → promote as above"

    def steps(rule: dict[str, Any]) -> tuple[str, str]:
        metric, rule_name = str(rule.get("metric") or rule.get("statistic") or ""), str(rule.get("name") or "")
        if rule.get("statistic") == "psi" or "drift" in rule_name:
            return ("`reports/dashboard.html`: which features drifted, by how much, since which batch",
                    f"labels show no metric alert: keep serving and watch; a metric alert too: retrain ({retrain}), "
                    f"{rollout}")
        if rule_name.startswith("bias"):
            return ("`reports/evaluation.html`, bias section: the group and the metric behind the ratio",
                    "hold promotions and tell the model owner; retraining on the same data repeats the disparity")
        if metric == "alert_rate":
            return ("the inputs of the batch that fired: a broken or missing feature upstream flags rows in bulk",
                    "fix the feed and re-run the batch; a real shift in the flagged share: review the threshold")
        if "latency" in metric or "lag" in metric:
            return ("CPU throttling and replica count of the service or consumers",
                    "scale out, then check the model's own scoring time against the load test")
        return ("`outputs/alerts.json`: the labelled rows behind the figure (few labels make it noisy), and "
                "whether drift fired in the same batch",
                f"a real drop: roll back (steps above) if the previous version scores better on the same batch, "
                f"else retrain ({retrain}), {rollout}")

    if not rules:
        return []
    lines = ["", "## On-call runbook", "", "| Alert | Look first at | Then |", "|---|---|---|"]
    return lines + [f"| {r.get('name')} | {first} | {then} |" for r in rules for first, then in [steps(r)]]


@tool(parse_docstring=True)
def write_deployment_notes(config_path: str = "pipelines/batch-scoring.yaml", constraints: list[str] | None = None,
                           *, ctx: Ctx) -> str:
    """Write docs/deployment-notes.md: the mission's constraints (and any not understood), validation status,
    rollout plan (shadow -> canary -> promote with gates from the agreed thresholds and the run window),
    rollback steps, monitoring setup and alert thresholds, the on-call runbook (per alert: where to look, what
    to do), and the measured resource/cost estimate. Figures are read from the reports written earlier.

    Args:
        config_path: Workspace-relative pipeline YAML.
        constraints: The mission's constraint clauses; empty to use those recorded at alignment.
    """
    cs = release_constraints(ctx, constraints)
    text, missing = deployment_notes(ctx.workspace, config_path=config_path, constraints=cs)
    ctx.write_text(NOTES_PATH, text, kind="doc")
    return json.dumps({"status": "ok" if not missing else "partial", "path": NOTES_PATH, "missing_inputs": missing,
                       "sections": [line[3:].split(":")[0].split(" (")[0] for line in text.splitlines()
                                    if line.startswith("## ")],
                       "not_understood": list(cs.not_understood)})
