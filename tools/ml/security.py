"""Security review of a workspace: secrets, PII-looking columns, unsafe loading, dependency licences."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from langchain_core.tools import tool

from orchestrator.errors import ToolError
from tools.context import Ctx

__all__ = ["scan", "security_scan", "SECURITY_PATH"]

SECURITY_PATH = "reports/security.json"
_TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".toml", ".ini", ".cfg", ".env", ".txt", ".md", ".sh", ".csv", ""}
_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".pytest_cache"}
_MAX_BYTES = 2_000_000
_SECRETS = [
    ("AWS access key id", re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "high"),
    ("private key", re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"), "high"),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"), "high"),
    ("Slack token", re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b"), "high"),
    ("API key assignment", re.compile(r"(?i)\b(api[_-]?key|secret|password|passwd|token)\b\s*[:=]\s*['\"]?"
                                      r"(?!\s*$)(?!<|\$\{|os\.environ|None|null|\"\"|'')[^\s'\"#]{8,}"), "high"),
    ("credentials in URL", re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]{3,}@"), "high"),
]
_PII = re.compile(r"(?i)(^|_)(e?mail|phone|mobile|ssn|social_security|passport|first_?name|last_?name|full_?name|"
                  r"surname|address|street|zip|postcode|dob|birth|ip_?addr(ess)?|iban|card_?number|national_id)($|_)")
_UNSAFE = [
    ("pickle.load", re.compile(r"\bpickle\.loads?\("), "medium"),
    ("joblib.load", re.compile(r"\bjoblib\.load\("), "medium"),
    ("yaml.load without SafeLoader", re.compile(r"\byaml\.load\((?![^)]*Loader=yaml\.SafeLoader)"), "high"),
    ("eval/exec", re.compile(r"(?<![\w.])(eval|exec)\("), "high"),
    ("torch.load", re.compile(r"\btorch\.load\((?![^)]*weights_only=True)"), "medium"),
]
_LICENCE_PACKAGES = ("numpy", "pandas", "scikit-learn", "joblib", "pyyaml", "pydantic", "onnxruntime", "scipy",
                     "fastapi", "uvicorn", "httpx")


def _files(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (set(path.relative_to(root).parts) & _SKIP_DIRS):
            out.append(path)
    return out


def _licence(name: str) -> dict[str, Any]:
    try:
        meta = metadata.metadata(name)
    except metadata.PackageNotFoundError:
        return {"package": name, "version": None, "licence": "not installed"}
    text = meta.get("License-Expression") or meta.get("License") or ""
    if not text or len(text) > 80:
        classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
        text = "; ".join(classifiers) or (text.splitlines()[0][:80] if text else "unknown")
    return {"package": name, "version": meta.get("Version"), "licence": text}


def _requirements(root: Path) -> list[str]:
    req = root / "requirements.txt"
    names = list(_LICENCE_PACKAGES)
    if req.is_file():
        names = [re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0] for line in req.read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    return names


def scan(root: Path) -> dict[str, Any]:
    """Findings of every kind, each with a severity, plus the dependency licences."""
    findings: list[dict[str, Any]] = []
    for path in _files(root):
        rel = path.relative_to(root).as_posix()
        if path.suffix in {".joblib", ".pkl", ".pickle"}:
            findings.append({"severity": "medium", "category": "unsafe-load", "path": rel,
                             "title": "pickle-based model artifact",
                             "detail": "unpickling runs arbitrary code: keep it in a trusted image, verify its sha256 "
                                       "against the registry before loading, prefer the ONNX export"})
            continue
        if path.suffix not in _TEXT_SUFFIXES or path.stat().st_size > _MAX_BYTES:
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".csv":
            header = text.split("\n", 1)[0]
            columns = [c.strip().strip('"') for c in header.split(",")]
            pii = [c for c in columns if _PII.search(c)]
            if pii:
                findings.append({"severity": "high", "category": "pii", "path": rel, "title": "PII-looking columns",
                                 "detail": f"columns {pii} look like personal data: confirm the legal basis, "
                                           "minimise or pseudonymise before scoring"})
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            for name, pattern, severity in _SECRETS:
                if pattern.search(line):
                    findings.append({"severity": severity, "category": "secret", "path": rel, "line": lineno,
                                     "title": name, "detail": "move it to a secret store / environment variable "
                                                              "and rotate it"})
            if path.suffix == ".py":
                for name, pattern, severity in _UNSAFE:
                    if pattern.search(line):
                        findings.append({"severity": severity, "category": "unsafe-load", "path": rel,
                                         "line": lineno, "title": name,
                                         "detail": "loads code-executing content: only from trusted, hash-verified files"})
    licences = [_licence(name) for name in _requirements(root)]
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("high", "medium", "low")}
    return {"findings": findings, "counts": counts, "licences": licences,
            "blocking": counts["high"] > 0, "files_scanned": len(_files(root))}


@tool(parse_docstring=True)
def security_scan(path: str = ".", *, ctx: Ctx) -> str:
    """Security review of the workspace: secrets in files, PII-looking data columns, pickle/unsafe loads
    in code and artifacts, and the licences of the dependencies (from requirements.txt). Writes
    reports/security.json. A high-severity finding raises the "compliance" failure mode (blocks release).

    Args:
        path: Workspace-relative folder to scan ("." for the whole workspace).
    """
    from tools.workspace import resolve_in_workspace

    root = resolve_in_workspace(ctx.workspace, path)
    if not root.exists():
        raise ToolError(f"{path!r} does not exist in the workspace: scan '.' or a folder that exists")
    result = scan(root)
    ctx.write_text(SECURITY_PATH, json.dumps(result, indent=2), kind="report")
    if result["blocking"]:
        high = [f for f in result["findings"] if f["severity"] == "high"]
        ctx.signal("compliance", f"{len(high)} high-severity security finding(s): "
                   + "; ".join(f"{f['title']} in {f['path']}" for f in high[:5]), findings=high[:20])
    # A blocking finding is a failed check: the call is recorded as an error, and release is blocked.
    return json.dumps({"status": "failed" if result["blocking"] else "ok", "blocking": result["blocking"],
                       "path": SECURITY_PATH,
                       "counts": result["counts"], "findings": result["findings"][:30],
                       "licences": result["licences"]})
