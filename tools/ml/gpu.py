"""Whether the scoring job needs a GPU, and what scheduling one takes: the request, the node selector and
toleration, and the cost line.

A GPU is called for by the model (a PyTorch / TorchScript artifact or a model.yaml naming ``framework: pytorch``,
``device: cuda``, or GPU execution providers for ONNX Runtime: CUDA, TensorRT, ROCm, DirectML) or by the
mission's words ("on a T4 GPU", "needs a GPU"); "no GPU" / "CPU only" in the mission says it is not. Otherwise
none is needed, and the plan says why (the model and the measured CPU throughput).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["GPU_TYPES", "gpu_plan", "gpu_check", "DEFAULT_GPU"]

GPU_TYPES: dict[str, dict[str, Any]] = {
    # accelerator label value (NVIDIA GPU feature discovery's nvidia.com/gpu.product family) and an on-demand price
    "t4": {"product": "Tesla-T4", "hour_usd": 0.35, "memory_gib": 16},
    "l4": {"product": "NVIDIA-L4", "hour_usd": 0.71, "memory_gib": 24},
    "a10g": {"product": "NVIDIA-A10G", "hour_usd": 1.01, "memory_gib": 24},
    "a10": {"product": "NVIDIA-A10", "hour_usd": 1.01, "memory_gib": 24},
    "v100": {"product": "Tesla-V100", "hour_usd": 2.48, "memory_gib": 16},
    "a100": {"product": "NVIDIA-A100", "hour_usd": 3.67, "memory_gib": 40},
    "h100": {"product": "NVIDIA-H100", "hour_usd": 6.98, "memory_gib": 80},
}
DEFAULT_GPU = "t4"
_GPU_WORDS = re.compile(r"\b(gpus?|cuda|nvidia|accelerators?|" + "|".join(GPU_TYPES) + r")\b", re.I)
_NO_GPU = re.compile(r"\b(no|without|not on an?|never)\s+(an?\s+)?(gpus?|accelerators?)\b|\bcpu[- ]only\b", re.I)
_GPU_PROVIDERS = ("cuda", "tensorrt", "rocm", "migraphx", "dml", "directml")
_TORCH_SUFFIXES = (".pt", ".pth", ".torchscript", ".ts")


def _model_reasons(workspace: Path, model_dir: str) -> list[str]:
    folder = workspace / model_dir
    if folder.is_file():
        folder = folder.parent
    reasons = []
    meta_file = folder / "model.yaml"
    meta = {}
    if meta_file.is_file():
        try:
            meta = yaml.safe_load(meta_file.read_text()) or {}
        except yaml.YAMLError:
            meta = {}
    meta = meta if isinstance(meta, dict) else {}
    framework = str(meta.get("framework") or "").lower()
    if framework in ("pytorch", "torch", "torchscript"):
        reasons.append(f"model.yaml names framework {framework!r}")
    device = str(meta.get("device") or (meta.get("serving") or {}).get("device") or "").lower()
    if device.startswith(("cuda", "gpu")):
        reasons.append(f"model.yaml asks for device {device!r}")
    providers = meta.get("execution_providers") or (meta.get("serving") or {}).get("execution_providers") or []
    gpu_providers = [str(p) for p in providers if any(k in str(p).lower() for k in _GPU_PROVIDERS)]
    if gpu_providers:
        reasons.append(f"model.yaml lists GPU execution providers {', '.join(gpu_providers)}")
    torch_files = sorted(p.name for p in folder.iterdir() if p.suffix in _TORCH_SUFFIXES) if folder.is_dir() else []
    if torch_files:
        reasons.append(f"the model folder holds a PyTorch artifact ({', '.join(torch_files)})")
    return reasons


def gpu_plan(workspace: Path, *, model_path: str, texts: Iterable[str], projected_hours: float,
             runs_per_month: float, gpu_hour_usd: float | None = None, model_note: str = "") -> dict[str, Any]:
    """The GPU decision for the scoring job, with the scheduling and cost it takes when one is needed."""
    words = [str(t) for t in texts if t]
    refused = [t for t in words if _NO_GPU.search(t)]
    asked = [t for t in words if _GPU_WORDS.search(t) and not _NO_GPU.search(t)]
    from_model = _model_reasons(workspace, model_path) if model_path else []
    if refused:
        return {"needed": False, "source": "mission",
                "reasons": [f"the mission says so: {refused[0]!r}"] + ([f"(the model would: {'; '.join(from_model)})"]
                                                                       if from_model else [])}
    if not asked and not from_model:
        why = [f"the model is {model_note or 'a CPU model'} scored on CPU: no PyTorch artifact, no GPU device or "
               "execution provider in model.yaml", "the mission asks for no GPU"]
        return {"needed": False, "source": None, "reasons": why}
    named = next((key for t in asked for key in GPU_TYPES if re.search(rf"\b{key}\b", t, re.I)), None)
    kind = named or DEFAULT_GPU
    spec = GPU_TYPES[kind]
    price = gpu_hour_usd if gpu_hour_usd is not None else spec["hour_usd"]
    return {
        "needed": True, "source": "mission" if asked else "model",
        "reasons": [f"the mission asks for it: {t!r}" for t in asked] + from_model,
        "type": kind, "type_source": "mission" if named else f"default ({DEFAULT_GPU}: none named)",
        "request": {"nvidia.com/gpu": 1},
        "node_selector": {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": spec["product"]},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "cost": {"gpu_hour_usd": price, "assumption": f"on-demand {kind.upper()} price; override gpu_hour_usd",
                 "per_run_usd": round(projected_hours * price, 4),
                 "per_month_usd": round(projected_hours * price * runs_per_month, 2),
                 "note": "the run time is the CPU measurement (no GPU on the measuring host): an upper bound for a "
                         "GPU run"},
    }


def gpu_check(workspace: Path) -> tuple[str, str, bool] | None:
    """The report's row: the manifest asks for a GPU exactly when the capacity estimate says one is needed."""
    cost_file, manifest = workspace / "reports/cost-estimate.json", workspace / "deploy/cronjob.yaml"
    if not cost_file.is_file():
        return None
    import json

    gpu = (json.loads(cost_file.read_text()) or {}).get("gpu")
    if not gpu:
        return None
    spec: dict[str, Any] = {}
    if manifest.is_file():
        doc = yaml.safe_load(manifest.read_text()) or {}
        spec = (((doc.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    container = (spec.get("containers") or [{}])[0]
    requested = "nvidia.com/gpu" in ((container.get("resources") or {}).get("limits") or {})
    scheduled = bool(spec.get("nodeSelector")) and any(t.get("key") == "nvidia.com/gpu" for t in spec.get("tolerations") or [])
    if gpu["needed"]:
        ok = requested and scheduled
        cost = gpu.get("cost") or {}
        return ("GPU scheduling", f"{gpu.get('type', '').upper()} GPU needed ({'; '.join(gpu['reasons'])}): manifest "
                f"request {'present' if requested else 'MISSING'}, node selector and toleration "
                f"{'present' if scheduled else 'MISSING'}; {cost.get('per_run_usd')} USD per run at "
                f"{cost.get('gpu_hour_usd')} USD per GPU-hour", ok)
    return ("GPU scheduling", f"none needed: {'; '.join(gpu['reasons'])}; the manifest requests "
            + ("a GPU anyway" if requested else "none"), not requested)
