"""Constraints in any phrasing: the seed's ``Constraints:`` items and free text, read into one typed set."""

from __future__ import annotations

import time
from typing import Any

import pytest

from orchestrator.constraints import ConstraintSet, parse_constraints
from orchestrator.cron import CronError, parse_cron
from orchestrator.mission import MissionSpec, parse_mission
from tests.support.missions import MISSION_TEXT


def _observed(cs: ConstraintSet) -> dict[str, Any]:
    """The set in short: what a table row can state."""
    return {
        "cron": cs.cron, "window": cs.window_seconds, "finish_by": cs.finish_by,
        "retraining": cs.retraining.cron if cs.retraining else None,
        "latency": [(t.percentile, t.max_ms) for t in cs.latency],
        "throughput": [(t.amount, t.unit, t.per) for t in cs.throughput],
        "memory_mib": cs.memory.max_mib if cs.memory else None,
        "cost": (cs.cost.amount, cs.cost.currency, cs.cost.per) if cs.cost else None,
        "alerts": [(r.name, r.direction, r.threshold, r.relative) for r in cs.alerts],
        "features": list(cs.fairness.sensitive_features) if cs.fairness else None,
        "not_understood": list(cs.not_understood), "timezone": cs.schedule.timezone if cs.schedule else None,
    }


# (phrase, expected): the phrase is one Constraints: item; "free:" phrases are free text (an objective).
TABLE: list[tuple[str, dict[str, Any]]] = [
    # run windows
    ("Run nightly within 2-hour window", {"cron": "0 1 * * *", "window": 7200}),
    ("within 30 minutes", {"cron": None, "window": 1800}),
    ("each run under 10 minutes", {"window": 600}),
    ("must finish in 45 min", {"window": 2700}),
    ("a window of 90 minutes", {"window": 5400}),
    ("within half an hour", {"window": 1800}),
    ("by 6am", {"cron": "0 1 * * *", "finish_by": "06:00", "window": 5 * 3600}),
    ("nightly job, done by 6am, starting at 10pm", {"cron": "0 22 * * *", "window": 8 * 3600}),
    # schedules
    ("hourly", {"cron": "0 * * * *", "window": None}),
    ("every 15 minutes", {"cron": "*/15 * * * *"}),
    ("every 6 hours", {"cron": "0 */6 * * *"}),
    ("daily at 3am", {"cron": "0 3 * * *"}),
    ("weekly", {"cron": "0 1 * * 0"}),
    ("weekly on Monday", {"cron": "0 1 * * 1"}),
    ("weekly on Sunday 02:00", {"cron": "0 2 * * 0"}),  # a time of day right after the day, no "at"
    # A schedule said of the retraining is its own, not the run's.
    ("free:then retrain weekly on Sunday 02:00, and write a runbook", {"cron": None, "retraining": "0 2 * * 0"}),
    ("Run nightly within 2-hour window; retrain the model every month",
     {"cron": "0 1 * * *", "window": 7200, "retraining": "0 1 1 * *"}),
    ("retraining: every Monday at 3am", {"cron": None, "retraining": "0 3 * * 1"}),
    ("retrain if drift exceeds 0.2", {"retraining": None, "alerts": [("feature_drift", "above", 0.2, False)],
                                      "not_understood": ["retrain if drift exceeds 0.2"]}),  # no schedule: asked back
    ("alert if drift exceeds 0.2", {"alerts": [("feature_drift", "above", 0.2, False)]}),
    ("free: Alert when MAE rises more than 15% and if drift exceeds 0.25.",  # a sentence's full stop after it
     {"alerts": [("mae_rise", "above", 0.15, True), ("feature_drift", "above", 0.25, False)], "not_understood": []}),
    ("prediction drift score goes above 0.3", {"alerts": [("prediction_drift", "above", 0.3, False)]}),
    ("drift above 5%", {"alerts": [("feature_drift", "above", None, False)], "not_understood": ["drift above 5%"]}),
    ("nightly 3am, within 2 hours", {"cron": "0 3 * * *", "window": 7200}),
    ("run daily, 06:30 UTC", {"cron": "30 6 * * *"}),
    ("weekly, 2 hours", {"cron": "0 1 * * 0", "not_understood": ["2 hours"]}),  # a duration is no time of day
    ("every Monday and Thursday at 4am", {"cron": "0 4 * * 1,4"}),
    ("daily on weekdays at 07:30", {"cron": "30 7 * * 1-5"}),
    ("monthly", {"cron": "0 1 1 * *"}),
    ("on the 15th of each month", {"cron": "0 1 15 * *"}),
    ("0 3 * * 1", {"cron": "0 3 * * 1"}),
    ("cron: 30 2 * * 1-5", {"cron": "30 2 * * 1-5"}),
    ("timezone Europe/Berlin, daily at 2am", {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}),
    # latency, throughput, memory, cost
    ("p95 latency under 50 ms", {"latency": [("p95", 50.0)],
                                 "alerts": [("latency_p95_ms_above", "above", 50.0, False)]}),
    ("latency below 100 ms", {"latency": [("p95", 100.0)]}),
    ("p50/p95/p99 under 200 ms", {"latency": [("p50", 200.0), ("p95", 200.0), ("p99", 200.0)]}),
    ("median latency under 20 ms and p99 under 150 ms", {"latency": [("p50", 20.0), ("p99", 150.0)]}),
    ("respond within 1 s", {"latency": [("p95", 1000.0)], "window": None}),
    ("1M rows per night", {"throughput": [(1e6, "rows", "night")]}),
    ("500 requests per second", {"throughput": [(500.0, "requests", "second")]}),
    ("10k events/s", {"throughput": [(1e4, "events", "second")]}),
    ("under 2 GB of memory", {"memory_mib": 1907.3}),
    ("RAM at most 4Gi", {"memory_mib": 4096.0}),
    ("$200/month", {"cost": (200.0, "USD", "month")}),
    ("budget of 50 USD per month", {"cost": (50.0, "USD", "month")}),
    ("€30 per run", {"cost": (30.0, "EUR", "run")}),
    # metric thresholds, direction-aware
    ("alert on precision drop >5%", {"alerts": [("precision_drop", "below", 0.05, True)]}),
    ("recall drops more than 3%", {"alerts": [("recall_drop", "below", 0.03, True)]}),
    ("MAE rises more than 10%", {"alerts": [("mae_rise", "above", 0.1, True)]}),
    ("a 5% drop in precision", {"alerts": [("precision_drop", "below", 0.05, True)]}),
    ("macro F1 below 0.8", {"alerts": [("f1_macro_below", "below", 0.8, False)]}),
    ("RMSE over 50", {"alerts": [("rmse_above", "above", 50.0, False)]}),
    ("free: Alert when RMSE is over 50.", {"alerts": [("rmse_above", "above", 50.0, False)], "not_understood": []}),
    ("free: Alert me when MAE rises more than 10%.", {"alerts": [("mae_rise", "above", 0.1, True)], "not_understood": []}),
    ("free: Score the parquet batches in data/batches every 6 hours.",
     {"cron": "0 */6 * * *", "timezone": "UTC", "not_understood": []}),
    ("RMSE under 50", {"alerts": [("rmse_above", "above", 50.0, False)]}),
    ("accuracy of at least 90%", {"alerts": [("accuracy_below", "below", 0.9, False)]}),
    ("feature drift", {"alerts": [("feature_drift", "above", None, False)]}),
    ("PSI > 0.25", {"alerts": [("feature_drift", "above", 0.25, False)]}),
    ("consumer lag exceeds 30 s", {"alerts": [("consumer_lag_seconds_above", "above", 30.0, False)]}),
    ("check for bias across sex and age", {"features": ["sex", "age"],
                                           "alerts": [("bias_disparity", "below", None, False)]}),
    ("free: Check whether it's biased by gender and by age_band.",
     {"features": ["gender", "age_band"], "alerts": [("bias_disparity", "below", None, False)], "not_understood": []}),
    ("is it unfair by race or by the sex columns", {"features": ["race", "sex"],
                                                    "alerts": [("bias_disparity", "below", None, False)]}),
    ("fairness across region, and across age", {"features": ["region", "age"],
                                                "alerts": [("bias_disparity", "below", None, False)]}),
    # free text
    ("free: it has to finish within 30 minutes and we want drift alerts",
     {"window": 1800, "alerts": [("feature_drift", "above", None, False)], "not_understood": []}),
    ("free: Productionize the fraud model as a nightly batch scoring job",
     {"cron": "0 1 * * *", "not_understood": []}),
    ("free: Score it every Monday at 02:00; it must be fast",
     {"cron": "0 2 * * 1", "not_understood": ["it must be fast"]}),
    ("free: Serve the churn model behind an API with p99 latency below 80 ms and a budget of $300 a month",
     {"latency": [("p99", 80.0)], "cost": (300.0, "USD", "month"), "not_understood": []}),
    # not understood: listed, never dropped
    ("keep it cheap", {"not_understood": ["keep it cheap"]}),
    ("must be GDPR compliant", {"not_understood": ["must be GDPR compliant"]}),
    ("Run nightly within 2-hour window and keep it cheap", {"cron": "0 1 * * *", "window": 7200,
                                                           "not_understood": ["keep it cheap"]}),
    ("do not run on weekends", {"cron": None, "not_understood": ["do not run on weekends"]}),
    ("concept drift", {"alerts": [], "not_understood": ["concept drift"]}),
]
_NOT_UNDERSTOOD_WITH_REASON = [
    ("every 90 minutes", "cannot be written as one cron schedule"),
    ("every 3 weeks", "cannot be written as one cron schedule"),
    ("cron 61 * * * *", "minute '61' is outside 0-59"),
    ("precision below 80", "say 80% or 0.8"),
    ("timezone Mars/Olympus", "not an IANA time zone"),
]


def _parse(phrase: str) -> ConstraintSet:
    if phrase.startswith("free:"):
        return parse_constraints(free=[phrase.removeprefix("free:").strip()])
    return parse_constraints([phrase])


@pytest.mark.parametrize(("phrase", "expected"), TABLE, ids=[p for p, _ in TABLE])
def test_phrase_is_read(phrase: str, expected: dict[str, Any]) -> None:
    observed = _observed(_parse(phrase))
    assert {key: observed[key] for key in expected} == expected
    if "not_understood" not in expected:
        assert observed["not_understood"] == []


@pytest.mark.parametrize(("phrase", "reason"), _NOT_UNDERSTOOD_WITH_REASON,
                         ids=[p for p, _ in _NOT_UNDERSTOOD_WITH_REASON])
def test_unusable_phrase_is_listed_with_the_reason(phrase: str, reason: str) -> None:
    cs = _parse(phrase)
    assert len(cs.not_understood) == 1 and phrase in cs.not_understood[0] and reason in cs.not_understood[0]
    assert cs.schedule is None and cs.alerts == ()


def test_table_is_large_enough() -> None:
    assert len(TABLE) + len(_NOT_UNDERSTOOD_WITH_REASON) >= 30
    assert sum(p.startswith("free:") for p, _ in TABLE) >= 4


def test_conflicting_phrases_are_asked_back() -> None:
    cs = parse_constraints(["weekly within 30 minutes"], free=["run it nightly, within 2 hours"])
    assert cs.cron == "0 1 * * 0" and cs.window_seconds == 1800
    assert any(item.startswith("nightly (conflicts with") for item in cs.not_understood)
    assert any(item.startswith("within 2 hours (conflicts with") for item in cs.not_understood)


def test_assumptions_are_noted() -> None:
    cs = parse_constraints(["weekly", "latency below 100 ms", "$500"])
    assert any("Sunday assumed" in n for n in cs.notes) and any("p95 assumed" in n for n in cs.notes)
    assert any("per month assumed" in n for n in cs.notes)


def test_window_longer_than_the_interval_is_noted() -> None:
    cs = parse_constraints(["hourly", "within 2 hours"])
    assert cs.window_seconds == 7200 and any("longer than the 1 h between runs" in n for n in cs.notes)


def test_alert_rules_compute_their_limit_from_the_baseline() -> None:
    phrases = ["precision drop >5%", "MAE rises more than 10%", "macro F1 below 0.8"]
    drop, rise, floor = parse_constraints(phrases).alerts
    assert drop.limit(0.9) == pytest.approx(0.855) and drop.fires(0.85, 0.9) and not drop.fires(0.86, 0.9)
    assert rise.limit(20.0) == pytest.approx(22.0) and rise.fires(22.5, 20.0)
    assert floor.limit() == 0.8 and floor.fires(0.79) and drop.limit() is None and drop.fires(0.5) is None


def test_clauses_read_back_to_the_same_set() -> None:
    """Tools receive ``clauses`` as their argument: parsing them again gives the mission's constraints."""
    spec = parse_mission("Please productionize models/churn. It has to finish within 30 minutes and we want drift "
                         "alerts. Run it weekly on Mondays at 3am, and it must be GDPR compliant.")
    again = parse_constraints(spec.constraint_set.clauses)
    assert again.model_dump(exclude={"clauses"}) == spec.constraint_set.model_dump(exclude={"clauses"})
    assert spec.constraint_set.cron == "0 3 * * 1" and spec.constraint_set.window_seconds == 1800
    assert spec.constraint_set.not_understood == ("it must be GDPR compliant",)


def test_seed_mission_reads_the_demo_constraints() -> None:
    cs = parse_mission(MISSION_TEXT).constraint_set
    assert cs.cron == "0 1 * * *" and cs.window_seconds == 7200 and cs.not_understood == ()
    assert [(r.name, r.threshold) for r in cs.alerts] == [("precision_drop", 0.05), ("feature_drift", None)]


def test_constraint_set_survives_the_database_round_trip() -> None:
    spec = parse_mission("Mission: score the fraud model\nWe need it every 15 minutes, each run under 5 minutes.\n"
                         "Constraints: p99 latency under 80 ms; must be GDPR compliant")
    loaded = MissionSpec.model_validate(spec.model_dump(mode="json"))
    assert loaded == spec and "constraint_set" not in spec.model_dump()
    assert loaded.constraint_set == spec.constraint_set
    assert loaded.constraint_set.cron == "*/15 * * * *" and loaded.constraint_set.window_seconds == 300
    assert ConstraintSet.model_validate_json(spec.constraint_set.model_dump_json()) == spec.constraint_set


@pytest.mark.parametrize(("text", "mode"), [
    ("Productionize the anomaly model as a nightly batch scoring job", "batch"),
    ("Expose the fraud model as a real-time REST endpoint", "online"),
    ("Serve the model; p95 latency under 50 ms", "online"),
    ("Score events from Kafka in real time; consumer lag under 30 s", "streaming"),
    ("Mission: churn model\nIt must answer requests with p99 under 100 ms.", "online"),
], ids=["batch", "endpoint", "latency", "kafka", "free-line-latency"])
def test_serving_mode_reads_free_text(text: str, mode: str) -> None:
    assert parse_mission(text).serving_mode == mode


@pytest.mark.parametrize(("expr", "text", "runs", "gap"), [
    ("0 1 * * *", "daily at 01:00 UTC", 30.0, 86400),
    ("*/15 * * * *", "every 15 minutes", 2880.0, 900),
    ("0 3 * * 1", "weekly on Monday at 03:00 UTC", 4.33, 604800),
    ("0 2 * * 1-5", "on weekdays at 02:00 UTC", 21.5, 86400),
    ("0 1 1 * *", "monthly on day 1 at 01:00 UTC", 1.0, 29 * 86400),  # February of the counted (leap) year
], ids=["daily", "quarter-hour", "weekly", "weekdays", "monthly"])
def test_cron_is_described_and_counted(expr: str, text: str, runs: float, gap: int) -> None:
    cron = parse_cron(expr)
    assert cron.describe() == text and cron.runs_per_month == runs and cron.min_interval_seconds == gap


@pytest.mark.parametrize("expr", ["0 1 * *", "60 * * * *", "0 24 * * *", "* * 0 * *", "* * * * 8", "*/0 * * * *"])
def test_invalid_cron_is_refused_with_the_field(expr: str) -> None:
    with pytest.raises(CronError):
        parse_cron(expr)


@pytest.mark.parametrize("text", ["p95/" * 4990, "1 " * 9990, "monday and " * 1800, "bias across a, " * 1300,
                                  "2-hour " * 2800, "1,000," * 3300],
                         ids=["percentiles", "digits", "days", "features", "durations", "thousands"])
def test_pathological_text_is_read_quickly(text: str) -> None:
    """A mission is untrusted text of up to 20,000 characters: no phrase pattern may backtrack without bound."""
    started = time.perf_counter()
    parse_mission(text).constraint_set  # noqa: B018 - computing it is the test
    assert time.perf_counter() - started < 3.0


@pytest.mark.parametrize(("phrases", "config", "expected"), [
    (["weekly within 30 minutes"], {"cron": "0 1 * * *", "window_hours": 2},
     ("0 1 * * 0", 1800, {"schedule": "mission", "timezone": "default", "window": "mission"})),
    ([], {"cron": "0 2 * * *", "timezone": "Europe/Paris", "window_hours": 1.5},
     ("0 2 * * *", 5400, {"schedule": "config", "timezone": "config", "window": "config"})),
    (["hourly"], None, ("0 * * * *", 3600, {"schedule": "mission", "timezone": "default", "window": "default"})),
    ([], None, ("0 1 * * *", 7200, {"schedule": "default", "timezone": "default", "window": "default"})),
], ids=["mission-wins", "config-fills", "default-window-capped-by-interval", "defaults"])
def test_run_plan_takes_the_mission_then_the_config_then_defaults(
        phrases: list[str], config: dict[str, Any] | None, expected: tuple[str, int, dict[str, str]]) -> None:
    plan = parse_constraints(phrases).run_plan(config)
    assert (plan.cron, plan.window_seconds, plan.sources) == expected


def test_run_plan_reports_an_unusable_config_cron() -> None:
    plan = parse_constraints([]).run_plan({"cron": "0 25 * * *"})
    assert plan.cron == "0 1 * * *" and "hour '25' is outside 0-23" in plan.problems[0]
