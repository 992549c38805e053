"""GPU scheduling: when the mission or the model calls for a GPU, the capacity estimate, the CronJob and the
deployment notes carry the request, the node selector and toleration and the cost line; otherwise the notes say
that none is needed and why."""

from __future__ import annotations

import json

import yaml

from tests.tools.ml.support import call
from tools.context import ToolContext
from tools.ml.capacity import estimate_capacity
from tools.ml.demo import DemoInfo
from tools.ml.gpu import gpu_check, gpu_plan
from tools.ml.release import write_deployment_notes
from tools.ml.schedule import write_schedule


def _pod(ws) -> dict:
    doc = yaml.safe_load((ws / "deploy/cronjob.yaml").read_text())
    return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_a_mission_asking_for_a_gpu_gets_one_scheduled_and_costed(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    ws = tool_ctx.workspace
    asked = ["Run nightly within 2-hour window", "score on an NVIDIA A100 GPU"]
    cost = call(estimate_capacity, tool_ctx, benchmark_rows=2000, constraints=asked)
    gpu = cost["gpu"]
    assert gpu["needed"] and gpu["type"] == "a100" and gpu["source"] == "mission"
    hours = json.loads((ws / "reports/cost-estimate.json").read_text())["projected_hours"]
    assert abs(gpu["cost"]["per_run_usd"] - hours * 3.67) < 1e-3 and cost["cost"]["gpu"] == gpu["cost"]
    call(write_schedule, tool_ctx, constraints=asked)
    pod = _pod(ws)
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-A100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    resources = pod["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1 == resources["requests"]["nvidia.com/gpu"]
    notes = json.loads(write_deployment_notes.invoke({"ctx": tool_ctx, "constraints": asked}))
    text = (ws / notes["path"]).read_text()
    assert "- GPU: 1 × A100 (mission)" in text and f"{gpu['cost']['per_run_usd']} USD per run" in text
    name, detail, ok = gpu_check(ws)
    assert ok and "manifest request present, node selector and toleration present" in detail


def test_a_cpu_model_gets_no_gpu_and_the_notes_say_why(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    ws = tool_ctx.workspace
    asked = ["Run nightly within 2-hour window"]
    assert call(estimate_capacity, tool_ctx, benchmark_rows=2000, constraints=asked)["gpu"]["needed"] is False
    call(write_schedule, tool_ctx, constraints=asked)
    pod = _pod(ws)
    assert "nodeSelector" not in pod and "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    call(write_deployment_notes, tool_ctx, constraints=asked)
    text = (ws / "docs/deployment-notes.md").read_text()
    assert "- GPU: none needed: the model is a" in text and "the mission asks for no GPU" in text
    assert gpu_check(ws)[2]


def test_the_model_can_call_for_a_gpu_and_the_mission_can_refuse_one(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    ws = tool_ctx.workspace
    meta = ws / "models/anomaly-detector/model.yaml"
    data = yaml.safe_load(meta.read_text())
    meta.write_text(yaml.safe_dump({**data, "execution_providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}))
    plan = gpu_plan(ws, model_path="models/anomaly-detector", texts=["Run nightly"], projected_hours=0.5,
                    runs_per_month=30)
    assert plan["needed"] and plan["source"] == "model" and plan["type"] == "t4"
    assert plan["reasons"] == ["model.yaml lists GPU execution providers CUDAExecutionProvider"]
    assert plan["cost"]["per_month_usd"] == round(0.5 * 0.35 * 30, 2)
    refused = gpu_plan(ws, model_path="models/anomaly-detector", texts=["CPU only, no GPU"], projected_hours=0.5,
                       runs_per_month=30)
    assert not refused["needed"] and refused["reasons"][0] == "the mission says so: 'CPU only, no GPU'"
