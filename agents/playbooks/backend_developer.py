"""The Backend Developer as played by the built-in planner: the online inference app when the mission
serves online, otherwise a review of the batch scoring interface."""

from __future__ import annotations

from agents.playbooks import PLAYBOOKS
from agents.playbooks.base import Call, Finding, Finish, Playbook, View
from agents.playbooks.ml_engineer import as_dict, failed, findings_of

__all__ = ["serve_or_review"]


def serve_or_review(view: View) -> Playbook:
    found = as_dict((yield Call("locate_inputs", {"inputs": list(view.mission.inputs)})))
    if view.mission.serving_mode != "online":
        review = as_dict((yield Call("review_scoring_interface",
                                     {"config_path": found.get("config_path") or "pipelines/batch-scoring.yaml"})))
        problems = review.get("problems") or []
        summary = (f"Batch mission: no online endpoint built. Reviewed the scoring interface ({review.get('checks')} "
                   f"checks, {len(problems)} problems) in {review.get('path')}.")
        findings = [Finding(title=p["title"], detail=p["detail"], severity=p.get("severity", "medium")) for p in problems]
        return Finish(summary=summary, findings=findings + findings_of(review), artifacts=[review.get("path", "")],
                      status="blocked" if failed(review) else "completed")
    app = as_dict((yield Call("generate_inference_service", {"model_path": found.get("model_path") or "",
                                                             "sample_data_path": found.get("reference_path") or ""})))
    if failed(app):
        return Finish(summary=f"Inference app not generated: {app.get('error')}", findings=findings_of(app), status="failed")
    tests = as_dict((yield Call("run_tests", {"path": app["tests"]})))
    ok = tests.get("failed") == 0 and tests.get("errors") == 0 and (tests.get("passed") or 0) > 0
    summary = (f"FastAPI app {app.get('app')} with {', '.join(app.get('endpoints', []))} for {app.get('features')} "
               f"validated features; its tests: {tests.get('passed')} passed, {tests.get('failed')} failed, "
               f"{tests.get('errors')} errors.")
    findings = [] if ok else [Finding(title="service tests failing", severity="high",
                                      detail=str(tests.get("failures") or tests.get("error")))]
    return Finish(summary=summary, findings=findings, artifacts=app.get("files", []),
                  status="completed" if ok else "failed")


PLAYBOOKS["backend-developer"] = {"*": serve_or_review}
