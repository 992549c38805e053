"""Mission chat text: the seed's invocation form and free text."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.mission import parse_mission
from tests.support.missions import MISSION_TEXT


def test_seed_form_is_parsed_into_fields() -> None:
    spec = parse_mission(MISSION_TEXT)
    assert spec.agent == "ml-engineer"
    assert spec.objective == "Productionize the anomaly detection model with batch scoring and drift monitoring."
    assert spec.inputs == ["models/anomaly-detector/", "pipelines/batch-scoring.yaml"]
    assert spec.constraints == ["Run nightly within 2-hour window", "alert on precision drop >5%"]
    assert spec.deliverables == ["Updated pipelines", "monitoring hooks", "deployment notes"]
    assert spec.validation == ["python -m pipelines.batch_scoring --dry-run", "integration tests", "CI pipeline run"]
    assert spec.serving_mode == "batch"


def test_free_text_becomes_the_objective_with_defaults() -> None:
    spec = parse_mission("Expose the fraud model as a real-time REST endpoint")
    assert spec.objective == "Expose the fraud model as a real-time REST endpoint"
    assert spec.inputs == [] and spec.agent == "ml-engineer"
    assert spec.serving_mode == "online"


def test_fields_continue_on_following_lines() -> None:
    spec = parse_mission("Mission: Ship it.\nConstraints: nightly;\n  alert on recall drop >3%")
    assert spec.constraints == ["nightly", "alert on recall drop >3%"]


@pytest.mark.parametrize("text", ["", "   \n\t", "Inputs: a.csv\nConstraints: none"],
                         ids=["empty", "blank", "no-objective"])
def test_empty_mission_is_refused(text: str) -> None:
    with pytest.raises(InputError):
        parse_mission(text)


def test_free_text_names_its_inputs_in_passing() -> None:
    spec = parse_mission("Serve the credit model (models/credit/model.joblib) behind a REST API; train on "
                         "data/train.csv and check data/holdout.csv, then update pipelines/score.yaml. Report p50/p95 "
                         "latency and/or throughput; docs at https://example.com/models/guide.html.")
    assert spec.inputs == ["models/credit/model.joblib", "data/train.csv", "data/holdout.csv", "pipelines/score.yaml"]


def test_named_inputs_win_over_paths_in_the_objective() -> None:
    spec = parse_mission("Mission: Ship models/a/ and data/x.csv.\nInputs: models/b/")
    assert spec.inputs == ["models/b/"]
