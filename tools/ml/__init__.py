"""The ML engineering toolkit: data alignment, evaluation and monitoring, pipelines, packaging, release,
security review and serving, as tools grouped into capabilities and tooling profiles."""

from __future__ import annotations

from langchain_core.tools import BaseTool

from tools.ml.alignment import align_data
from tools.ml.capacity import estimate_capacity
from tools.ml.ci_run import run_ci_workflow
from tools.ml.data import fingerprint_dataset, inspect_model, locate_inputs, profile_dataset
from tools.ml.documents import write_design_doc, write_mission_report
from tools.ml.evaluation import evaluate_model
from tools.ml.feature_store import build_feature_store
from tools.ml.model_registry import register_model, write_manifest
from tools.ml.packaging import build_container, export_onnx_model
from tools.ml.pipeline import generate_batch_pipeline
from tools.ml.release import write_deployment_notes
from tools.ml.remediation import retrain_candidate
from tools.ml.schedule import write_ci_workflow, write_schedule
from tools.ml.security import security_scan
from tools.ml.shadow import compare_shadow
from tools.ml.training import generate_training_pipeline, run_training_pipeline
from tools.ml.serving import generate_inference_service, load_test_service, review_scoring_interface
from tools.ml.stream_release import estimate_stream_capacity, write_stream_deployment
from tools.ml.streaming import generate_streaming_consumer, write_stream_design

__all__ = ["CAPABILITIES", "PROFILES"]

CAPABILITIES: dict[str, list[BaseTool]] = {
    "MLData": [locate_inputs, profile_dataset, fingerprint_dataset, inspect_model],
    "MLAlign": [align_data],
    "MLExperiment": [retrain_candidate, generate_training_pipeline, run_training_pipeline],
    "MLEval": [evaluate_model, compare_shadow],
    "MLPipeline": [generate_batch_pipeline, write_stream_design, generate_streaming_consumer,
                   generate_training_pipeline, build_feature_store],
    "MLPackage": [export_onnx_model, build_container, register_model, write_manifest],
    "MLRelease": [estimate_capacity, write_schedule, write_ci_workflow, run_ci_workflow, write_deployment_notes,
                  estimate_stream_capacity, write_stream_deployment],
    "MLDocs": [write_design_doc, write_mission_report],
    "SecurityScan": [security_scan],
    "Serving": [generate_inference_service, load_test_service, review_scoring_interface],
}
"""Capability name (as written in an agent's ``tools:``) -> the ML tools it grants."""

PROFILES: dict[str, list[str]] = {
    "data-ml": ["MLData", "MLPipeline", "MLEval", "MLPackage", "MLDocs"],
    "data-science": ["MLData", "MLAlign", "MLExperiment", "MLEval"],
    "devops": ["MLData", "MLRelease"],
    "security": ["MLData", "SecurityScan"],
    "backend": ["MLData", "Serving"],
}
"""``toolingProfile`` -> the capabilities it adds to the agent's own ``tools:``."""
