"""The mission's constraints, read once from any phrasing into a typed :class:`ConstraintSet`.

Run windows, schedules, latency, throughput, memory and cost budgets, metric thresholds and fairness requests
are read from the ``Constraints:`` items and from the mission's free text. Every deliverable (the CronJob's
schedule and deadline, the capacity verdict, alert thresholds, deployment notes, CI) reads this one set, so a
"weekly, within 30 minutes" mission cannot end up as a nightly two-hour job. A constraint clause nothing here
understands is listed in ``not_understood``, to be asked back, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from orchestrator.constraint_rules import Found, extract, residue
from orchestrator.cron import CronError, parse_cron

__all__ = ["ConstraintSet", "Schedule", "LatencyTarget", "Throughput", "MemoryBudget", "CostBudget", "AlertRule",
           "Fairness", "RunPlan", "parse_constraints", "constraints_from", "amend_clauses", "format_duration", "DEFAULT_CRON",
           "DEFAULT_WINDOW_SECONDS"]

DEFAULT_CRON = "0 1 * * *"
"""Nightly at 01:00: what "nightly"/"daily" mean when no time is given, and the schedule when none is stated."""
DEFAULT_WINDOW_SECONDS = 7200
"""The run window when none is stated (capped by the gap between runs)."""
_FROZEN = ConfigDict(frozen=True)


class Schedule(BaseModel):
    """When the job runs."""

    model_config = _FROZEN
    cron: str
    """Five-field cron expression, validated."""
    timezone: str = "UTC"
    text: str
    """The schedule in words ("weekly on Monday at 03:00 UTC")."""
    source_text: str


class LatencyTarget(BaseModel):
    """A latency objective for an online or streaming service."""

    model_config = _FROZEN
    percentile: str
    """``p50``, ``p95``, ``p99``, ... or ``mean`` / ``max``."""
    max_ms: float
    source_text: str


class Throughput(BaseModel):
    """A volume the system must sustain: rows per night, requests per second."""

    model_config = _FROZEN
    amount: float
    unit: str
    """What is counted: rows, requests, events, ..."""
    per: Literal["second", "minute", "hour", "day", "night", "week", "month", "run"]
    source_text: str

    @property
    def per_second(self) -> float | None:
        """The rate per second when ``per`` is a clock unit (None for per run/night, whose length is the window)."""
        seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000}
        return self.amount / seconds[self.per] if self.per in seconds else None


class MemoryBudget(BaseModel):
    """The memory a run may use."""

    model_config = _FROZEN
    max_mib: float
    source_text: str


class CostBudget(BaseModel):
    """The money the deployment may cost."""

    model_config = _FROZEN
    amount: float
    currency: Literal["USD", "EUR", "GBP"]
    per: Literal["run", "hour", "day", "week", "month", "year"]
    source_text: str

    def per_month(self, runs_per_month: float) -> float:
        """The budget expressed per 30-day month, given how often the job runs."""
        factor = {"run": runs_per_month, "hour": 720, "day": 30, "week": 30 / 7, "month": 1, "year": 1 / 12}
        return self.amount * factor[self.per]


class AlertRule(BaseModel):
    """A metric threshold the mission asks to be alerted on, direction-aware.

    ``direction`` is the bad side: ``below`` fires when the metric falls under the limit, ``above`` when it goes
    over it. A ``relative`` rule's limit moves with the baseline (``threshold`` is a fraction of it: 0.05 for
    "precision drop >5%"); an absolute rule's limit is ``threshold`` itself. ``threshold`` None means the
    metric's standard level (PSI 0.2 for drift, four-fifths for a disparity ratio).
    """

    model_config = _FROZEN
    name: str
    metric: str
    """scikit-learn style name: precision, recall, f1_macro, mae, rmse, r2, psi, latency_p95_ms, ..."""
    direction: Literal["below", "above"]
    threshold: float | None
    relative: bool
    source_text: str

    def limit(self, baseline: float | None = None) -> float | None:
        """The value past which the rule fires (None for a relative rule without a baseline)."""
        if not self.relative:
            return self.threshold
        if baseline is None or self.threshold is None:
            return None
        return baseline * (1 - self.threshold) if self.direction == "below" else baseline * (1 + self.threshold)

    def fires(self, value: float, baseline: float | None = None) -> bool | None:
        """Whether ``value`` breaches the rule (None when the limit is unknown)."""
        limit = self.limit(baseline)
        if limit is None:
            return None
        return value < limit if self.direction == "below" else value > limit

    def describe(self) -> str:
        """The rule in words, e.g. "precision more than 5% below its baseline"."""
        if self.threshold is None:
            return f"{self.metric} {self.direction} its standard level"
        if self.relative:
            return f"{self.metric} more than {self.threshold:.0%} {self.direction} its baseline"
        return f"{self.metric} {self.direction} {self.threshold:g}"


class Fairness(BaseModel):
    """A request to check the model for bias."""

    model_config = _FROZEN
    sensitive_features: tuple[str, ...] = ()
    """The attributes named ("across sex and age"); empty when the mission only says "check for bias"."""
    source_text: str


class ConstraintSet(BaseModel):
    """Every constraint of a mission, typed; read by each deliverable."""

    model_config = _FROZEN
    window_seconds: int | None = None
    """How long one run may take (None: not stated)."""
    window_text: str | None = None
    finish_by: str | None = None
    """Wall-clock deadline "HH:MM" ("by 6am"); with a daily start time it sets ``window_seconds``."""
    schedule: Schedule | None = None
    retraining: Schedule | None = None
    """When the model is retrained ("retrain weekly on Sunday 02:00"): a job of its own, not the run's schedule."""
    latency: tuple[LatencyTarget, ...] = ()
    throughput: tuple[Throughput, ...] = ()
    memory: MemoryBudget | None = None
    cost: CostBudget | None = None
    alerts: tuple[AlertRule, ...] = ()
    fairness: Fairness | None = None
    not_understood: tuple[str, ...] = ()
    """Constraint clauses (or conflicting ones) nothing here could read: to ask back to the user."""
    notes: tuple[str, ...] = ()
    """Assumptions made while reading (a percentile not stated, a start time implied)."""
    clauses: tuple[str, ...] = ()
    """What the set was read from: each ``Constraints:`` item as written, then each constraint phrase found in
    free text. ``parse_constraints(clauses)`` reads the same set: pass these to a tool."""

    @property
    def cron(self) -> str | None:
        return self.schedule.cron if self.schedule else None

    def alert(self, metric: str) -> AlertRule | None:
        """The first rule on ``metric``, if any."""
        return next((rule for rule in self.alerts if rule.metric == metric), None)

    def run_plan(self, config_schedule: Mapping[str, Any] | None = None) -> RunPlan:
        """The schedule and window a deliverable must use: the mission's, else the config's, else defaults.

        Args:
            config_schedule: The pipeline config's ``schedule`` section (``cron``, ``timezone``, ``window_hours``).
        """
        config = dict(config_schedule or {})
        sources: dict[str, Literal["mission", "config", "default"]] = {}
        problems: list[str] = []
        if self.schedule:
            cron, sources["schedule"] = self.schedule.cron, "mission"
        elif config.get("cron"):
            cron, sources["schedule"] = str(config["cron"]), "config"
        else:
            cron, sources["schedule"] = DEFAULT_CRON, "default"
        try:
            parsed = parse_cron(cron)
        except CronError as exc:
            problems.append(f"the config's schedule.cron is unusable ({exc}); the default {DEFAULT_CRON!r} is used")
            parsed, sources["schedule"] = parse_cron(DEFAULT_CRON), "default"
        if self.schedule and self.schedule.timezone != "UTC":
            timezone, sources["timezone"] = self.schedule.timezone, "mission"
        elif config.get("timezone"):
            timezone, sources["timezone"] = str(config["timezone"]), "config"
        else:
            timezone, sources["timezone"] = "UTC", "default"
        gap = parsed.min_interval_seconds
        if self.window_seconds:
            window, sources["window"] = self.window_seconds, "mission"
        elif config.get("window_hours"):
            window, sources["window"] = int(round(float(config["window_hours"]) * 3600)), "config"
        else:
            window, sources["window"] = min(DEFAULT_WINDOW_SECONDS, gap or DEFAULT_WINDOW_SECONDS), "default"
        return RunPlan(cron=parsed.expression, timezone=timezone, schedule_text=parsed.describe(timezone),
                       window_seconds=window, window_text=format_duration(window),
                       runs_per_month=parsed.runs_per_month, min_interval_seconds=gap, sources=sources,
                       problems=tuple(problems))

    def summary(self) -> list[str]:
        """One line per understood constraint, for reports and notes."""
        lines = []
        if self.schedule:
            lines.append(f"Schedule: {self.schedule.text} (cron `{self.schedule.cron}`)")
        if self.retraining:
            lines.append(f"Retraining: {self.retraining.text} (cron `{self.retraining.cron}`)")
        if self.window_seconds:
            lines.append(f"Run window: {format_duration(self.window_seconds)}"
                         + (f" (finish by {self.finish_by})" if self.finish_by else ""))
        elif self.finish_by:
            lines.append(f"Finish by {self.finish_by}")
        lines += [f"Latency: {t.percentile} under {t.max_ms:g} ms" for t in self.latency]
        lines += [f"Throughput: {t.amount:,.0f} {t.unit} per {t.per}" for t in self.throughput]
        if self.memory:
            lines.append(f"Memory: at most {self.memory.max_mib:,.0f} MiB")
        if self.cost:
            lines.append(f"Cost: at most {self.cost.amount:g} {self.cost.currency} per {self.cost.per}")
        lines += [f"Alert `{r.name}`: fires when {r.describe()}" for r in self.alerts]
        if self.fairness:
            lines.append("Bias check across " + (", ".join(self.fairness.sensitive_features) or "unnamed attributes"))
        return lines


class RunPlan(BaseModel):
    """When a scheduled job runs and how long it may take, with where each figure came from.

    The mission's constraints win; the pipeline config fills what the mission does not say; defaults last
    (nightly at 01:00, a 2 h window capped by the gap between runs).
    """

    model_config = _FROZEN
    cron: str
    timezone: str
    schedule_text: str
    """The schedule in words, for notes and reports."""
    window_seconds: int
    """The job's deadline (a CronJob's ``activeDeadlineSeconds``) and the capacity verdict's window."""
    window_text: str
    runs_per_month: float
    min_interval_seconds: int | None
    sources: dict[str, Literal["mission", "config", "default"]]
    """Where ``schedule``, ``timezone`` and ``window`` came from."""
    problems: tuple[str, ...] = ()

    @property
    def window_hours(self) -> float:
        return self.window_seconds / 3600


def format_duration(seconds: float) -> str:
    """A duration as people write it: "45 s", "30 min", "2 h", "1 h 30 min"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def _cron_from_parts(found: list[Found], notes: list[str]) -> tuple[str | None, str]:
    """Compose one cron expression from the schedule phrases found (frequency, days, start time)."""
    literal = next((f for f in found if f.kind == "cron"), None)
    if literal is not None:
        return str(literal.value), literal.text
    parts: dict[str, Found] = {}
    for f in found:
        if f.kind in ("every", "days", "start", "monthday"):
            parts.setdefault(f.kind, f)  # the first wins; later different ones are reported as conflicts
    if not parts:
        return None, ""
    every = parts.get("every")
    unit, n = every.value if every else (("week" if "days" in parts else "day"), 1)
    if unit == "month" or "monthday" in parts:
        unit = "month"
    hour, minute = parts["start"].value if "start" in parts else (1, 0)
    dow = parts["days"].value if "days" in parts else "*"
    if unit == "minute":
        expr = f"*/{n} * * * {dow}" if n > 1 else f"* * * * {dow}"
    elif unit == "hour":
        expr = f"{minute if 'start' in parts else 0} {'*' if n == 1 else f'*/{n}'} * * {dow}"
    elif unit == "twice":
        expr = f"{minute} {hour},{(hour + 12) % 24} * * {dow}"
    elif unit == "day":
        expr = f"{minute} {hour} {'*' if n == 1 else f'*/{n}'} * {dow}"
    elif unit == "week":
        if dow == "*":
            dow = "0"
            notes.append("weekly with no day stated: Sunday assumed")
        expr = f"{minute} {hour} * * {dow}"
    else:
        day = parts["monthday"].value if "monthday" in parts else 1
        expr = f"{minute} {hour} {day} * *"
    if "start" not in parts and unit not in ("minute", "hour"):
        notes.append("no start time stated: 01:00 assumed")
    return expr, "; ".join(f.text for f in parts.values())


def constraints_from(clauses: Sequence[str] | None, *, stored: Mapping[str, Any] | None = None) -> ConstraintSet:
    """The constraint set a tool works with: parsed from the clauses it was given, else the one stored at
    alignment (``reports/alignment.json`` ``constraint_set``), else none."""
    if clauses:
        return parse_constraints([str(c) for c in clauses])
    if stored:
        return ConstraintSet.model_validate(dict(stored))
    return ConstraintSet()


def parse_constraints(explicit: Sequence[str] = (), *, free: Sequence[str] = ()) -> ConstraintSet:
    """Read the constraints out of the ``Constraints:`` items (``explicit``) and any other mission text (``free``).

    An explicit item whose words are not all accounted for is listed in ``not_understood``; in free text only
    the clauses that sound like a constraint ("must", "under", "budget", a number with a unit) are.
    """
    found: list[Found] = []
    not_understood: list[str] = []
    clauses: list[str] = []
    for text, is_explicit in [(t, True) for t in explicit] + [(t, False) for t in free]:
        matches, masked = extract(text)
        found += matches
        unread = residue(text, masked, strict=is_explicit)
        not_understood += unread
        clauses += [text.strip()] if is_explicit else [m.text for m in matches] + unread
    not_understood += [f"{f.text} ({f.value})" for f in found if f.kind == "unreadable"]
    notes: list[str] = [f.note for f in found if f.note]

    def single(kind: str) -> Found | None:
        """The first phrase of a kind; a later, different one is a conflict to ask back."""
        hits = [f for f in found if f.kind == kind]
        for other in hits[1:]:
            if other.value != hits[0].value:
                not_understood.append(f"{other.text} (conflicts with {hits[0].text!r})")
        return hits[0] if hits else None

    for kind in ("every", "days", "start", "monthday", "cron"):
        single(kind)
    timezone, finish, window = single("timezone"), single("finish_by"), single("window")
    schedule = _schedule(found, notes, not_understood, finish=finish,
                         timezone=str(timezone.value) if timezone else "UTC")
    retraining = None
    if (retrain := single("retrain")) is not None:
        retrain_notes: list[str] = []
        retraining = _schedule(list(retrain.value), retrain_notes, not_understood, finish=None,
                               timezone=str(timezone.value) if timezone else "UTC")
        if retraining is not None:
            retraining = retraining.model_copy(update={"source_text": retrain.text})
        notes += [f"retraining: {note}" for note in retrain_notes]
    window_seconds = int(window.value) if window else None
    window_text = window.text if window else None
    finish_by = None
    if finish:
        hour, minute = finish.value
        finish_by = f"{hour:02d}:{minute:02d}"
        fixed = parse_cron(schedule.cron).fixed_time if schedule else None
        if fixed is None:
            not_understood.append(f"{finish.text} (needs a schedule that starts at one time of day)")
        else:
            until = 60 * (((hour * 60 + minute) - (fixed[0] * 60 + fixed[1])) % 1440 or 1440)
            if window_seconds is None or until < window_seconds:
                if window_seconds is not None:
                    notes.append(f"{finish.text!r} leaves {format_duration(until)}, less than {window.text!r}")
                window_seconds, window_text = until, finish.text
    if schedule and window_seconds:
        gap = parse_cron(schedule.cron).min_interval_seconds
        if gap and window_seconds > gap:
            notes.append(f"the {format_duration(window_seconds)} window is longer than the {format_duration(gap)} "
                         "between runs: a run still going when the next is due makes that one skip")
    alerts: dict[str, AlertRule] = {}
    for f in found:
        if f.kind != "alert":
            continue
        rule = AlertRule(**f.value)
        if rule.name not in alerts:
            alerts[rule.name] = rule
        elif alerts[rule.name].threshold != rule.threshold:
            not_understood.append(f"{f.text} (conflicts with {alerts[rule.name].source_text!r})")
    memory, cost, fairness = single("memory"), single("cost"), single("fairness")
    return ConstraintSet(
        window_seconds=window_seconds, window_text=window_text, finish_by=finish_by, schedule=schedule,
        retraining=retraining,
        latency=tuple(LatencyTarget(**f.value) for f in found if f.kind == "latency"),
        throughput=tuple(Throughput(**f.value) for f in found if f.kind == "throughput"),
        memory=MemoryBudget(**memory.value) if memory else None, cost=CostBudget(**cost.value) if cost else None,
        alerts=tuple(alerts.values()), fairness=Fairness(**fairness.value) if fairness else None,
        not_understood=tuple(dict.fromkeys(not_understood)), notes=tuple(dict.fromkeys(notes)),
        clauses=tuple(dict.fromkeys(c for c in clauses if c)))


def _schedule(found: list[Found], notes: list[str], not_understood: list[str], *, finish: Found | None,
              timezone: str) -> Schedule | None:
    expr, source = _cron_from_parts(found, notes)
    nightly_volume = any(f.kind == "throughput" and f.value["per"] in ("night", "day") for f in found)
    if expr is None and (finish or nightly_volume):
        expr, source = DEFAULT_CRON, finish.text if finish else "a nightly volume"
        notes.append(f"a daily run implied by {source!r}: 01:00 assumed")
    if expr is None:
        return None
    try:
        cron = parse_cron(expr)
    except CronError as exc:
        not_understood.append(f"{source} ({exc})")
        return None
    return Schedule(cron=cron.expression, timezone=timezone, text=cron.describe(timezone), source_text=source)


def amend_clauses(base: ConstraintSet, change: ConstraintSet) -> tuple[str, ...]:
    """The clauses of ``base`` with what ``change`` states instead (a user's instruction during a run):
    each aspect ``change`` sets (window, schedule, latency, budgets, an alert on a metric) replaces the
    base's; the rest stays. Clauses are the phrases as written, so ``parse_constraints`` reads them back."""
    def pick(name: str) -> Any:
        return getattr(change, name) or getattr(base, name)

    clauses: list[str] = []
    schedule = pick("schedule")
    if schedule is not None:
        clauses.append(schedule.source_text)
    if (retraining := pick("retraining")) is not None:
        clauses.append(retraining.source_text)
    window = change.window_text if change.window_seconds else base.window_text
    if window:
        clauses.append(window)
    for name in ("latency", "throughput"):
        clauses += [item.source_text for item in pick(name)]
    for name in ("memory", "cost", "fairness"):
        if pick(name) is not None:
            clauses.append(pick(name).source_text)
    changed = {rule.metric for rule in change.alerts}
    clauses += [rule.source_text for rule in base.alerts if rule.metric not in changed]
    clauses += [rule.source_text for rule in change.alerts]
    return tuple(dict.fromkeys(c for c in clauses if c))
