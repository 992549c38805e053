"""Why an ML tool cannot use what the workspace holds: the model or the data, with the file and the fix."""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import ToolError, UnusableInput

__all__ = ["ModelError", "DataError", "Unconvertible", "check_workspace"]


class ModelError(UnusableInput):
    """The model cannot be found, loaded or used (missing, corrupt, not an estimator, features unknown)."""


class DataError(UnusableInput):
    """A dataset cannot be used as given (missing, empty, unreadable, wrong columns or values, no labels)."""


class Unconvertible(ToolError):
    """The model has no ONNX form (skl2onnx has no converter for one of its estimators): a fact about the model,
    not a failed check; it is served as the joblib artifact from a trusted image."""


def check_workspace(workspace: Path) -> None:
    """Refuse a workspace that is not a folder (a file, or gone) before any tool looks inside it."""
    if not workspace.is_dir():
        what = "a file" if workspace.exists() else "missing"
        raise UnusableInput(f"the mission workspace is {what}, not a folder", path=".",
                            fix="give the mission a workspace folder holding the model, data and configuration")
