"""Security review findings and the generated online inference app."""

from __future__ import annotations

import subprocess
import sys

from tests.tools.ml.support import call
from tools.context import ToolContext
from tools.ml.demo import DemoInfo
from tools.ml.security import security_scan
from tools.ml.serving import generate_inference_service, review_scoring_interface


def test_clean_demo_has_no_blocking_finding(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    result = call(security_scan, tool_ctx)
    assert result["status"] == "ok" and result["counts"]["high"] == 0
    assert any(f["category"] == "unsafe-load" and f["path"].endswith("model.joblib") for f in result["findings"])
    assert {lic["package"] for lic in result["licences"]} >= {"numpy", "scikit-learn"}
    assert tool_ctx.signals == []


def test_secret_and_pii_are_high_and_signal_compliance(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    (tool_ctx.workspace / "pipelines/settings.py").write_text('API_KEY = "sk_live_0123456789abcdef"\n')
    (tool_ctx.workspace / "data/customers.csv").write_text("customer_id,email,amount\n1,a@b.c,3\n")
    result = call(security_scan, tool_ctx)
    titles = {(f["category"], f["path"]) for f in result["findings"] if f["severity"] == "high"}
    assert ("secret", "pipelines/settings.py") in titles and ("pii", "data/customers.csv") in titles
    assert result["status"] == "failed" and result["blocking"] and [s.kind for s in tool_ctx.signals] == ["compliance"]


def test_online_app_tests_pass(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    result = call(generate_inference_service, tool_ctx, model_path="models/anomaly-detector",
                  sample_data_path="data/reference.csv")
    assert result["status"] == "ok"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_service.py"],
                          cwd=tool_ctx.workspace, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "6 passed" in proc.stdout


def test_scoring_interface_review(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    result = call(review_scoring_interface, tool_ctx)
    assert result["status"] == "ok"
    text = (tool_ctx.workspace / "docs/scoring-interface-review.md").read_text()
    assert "input columns cover the model features | ok" in text
