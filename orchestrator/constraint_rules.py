"""The phrases a mission states constraints in, as patterns read in a fixed order.

Each pattern that matches is blanked out of the text before the next one runs, so "every 10 minutes" is a
schedule and never also a "10 minutes" window, and "respond within 200 ms" is latency, not a run window.
What is left once every pattern has run is the residue: a clause whose residue still holds words that carry
meaning was not understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Found", "extract", "residue"]


@dataclass(frozen=True)
class Found:
    """One constraint phrase: its kind, its value as plain data, and the words it was read from."""

    kind: str
    value: Any
    text: str
    note: str = ""
    """An assumption made while reading it."""


_F = re.I
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
          "forty-five": 45, "sixty": 60, "ninety": 90, "other": 2}
_WORD_RE = "|".join(sorted(_WORDS, key=len, reverse=True))
_DUR = (rf"(?:(?P<half>half[- ]an?[- ]hour|half[- ]hour)|\b(?P<dn>{_NUM}|{_WORD_RE})\s*-?\s*"
        r"(?P<du>hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s|days?)\b)")
_CLOCK = (r"(?:(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ap>a\.?m\.?|p\.?m\.?)?|(?P<word>midnight|noon))"
          r"(?:\s*(?:utc|gmt|z)\b)?")
_DAY = (r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?|week\s*days?|weekends?|business\s+days?"
        r"|working\s+days?")
_PCT = r"(?:p\d{2,3}(?:\.\d+)?|median|mean|average|avg|max(?:imum)?|\d{2}(?:\.\d+)?(?:th)?[- ]percentile)"
_PCTS = rf"{_PCT}(?:\s*(?:/|,|and|&)\s*{_PCT}){{0,4}}"
_LCMP = (r"(?:(?:(?:must|should|has\s+to|needs?\s+to)\s+(?:be|stay|remain)\s+|(?:is|stays|remains)\s+)?"
         r"(?:under|below|<=?|≤|less\s+than|lower\s+than|within|at\s+most|no\s+more\s+than|"
         r"(?:must|should)\s+not\s+exceed|not\s+exceeding|max(?:imum)?(?:\s+of)?|of|:|=)\s*)?")
_LNUM = rf"(?P<n>{_NUM})\s*(?P<u>ms|msec|milliseconds?|s|secs?|seconds?)\b"
_SCALE = r"(?P<sc>k|thousand|m|mn|mm|million|b|bn|billion)?"
_WHAT = (r"(?P<what>rows|records|events|requests|reqs?|predictions|inferences|messages|msgs|transactions|samples|"
         r"items|documents|docs|images|scores|calls|queries|lines)")
_PER = r"(?P<per>second|sec|s|minute|min|hour|hr|h|day|night|run|batch|job|week|month)"
_MEMU = r"(?P<u>tib|tb|gib|gb|gi|g|mib|mb|mi|m)\b"
_MCMP = (r"(?:under|below|less\s+than|lower\s+than|at\s+most|within|max(?:imum)?(?:\s+of)?|limit(?:ed)?\s+(?:of|to)|"
         r"capped\s+at|cap\s+of|budget\s+of|no\s+more\s+than|(?:must|should)\s+not\s+exceed|not\s+exceeding|<=?|≤|of|"
         r":|=|to)")
_CPER = (r"(?:\s*(?:/|per|a|an|each|every)\s*(?P<per>month|mo|day|run|year|yr|week|hour|hr|night|job)\b"
         r"|\s+(?P<adv>monthly|daily|weekly|yearly|annually|hourly|nightly)\b)?")
_METRICS = {
    r"mean\s+absolute\s+percentage\s+error|mape": "mape", r"mean\s+absolute\s+error|mae": "mae",
    r"root\s+mean\s+squared?\s+error|rmse": "rmse", r"mean\s+squared?\s+error|mse": "mse",
    r"r-?squared|r\s+squared|r2|r²|r\^2|coefficient\s+of\s+determination": "r2",
    r"balanced\s+accuracy": "balanced_accuracy", r"average\s+precision|pr[- _]?auc": "average_precision",
    r"precision": "precision", r"recall|sensitivity|true\s+positive\s+rate|tpr": "recall",
    r"specificity": "specificity", r"false\s+positive\s+rate|fpr": "false_positive_rate",
    r"false\s+negative\s+rate|fnr": "false_negative_rate", r"f1(?:[- ]score)?|f-?score|f-measure": "f1",
    r"accuracy": "accuracy", r"roc[- _]?auc|auroc|auc": "roc_auc", r"log[- ]?loss|cross[- ]entropy": "log_loss",
    r"alert\s+rate|anomaly\s+rate|flag(?:ged)?\s+rate": "alert_rate", r"error\s+rate|failure\s+rate": "error_rate",
}
_METRIC_LOOKUP = [(re.compile(rf"^(?:{alt})$", _F), name) for alt, name in _METRICS.items()]
_METRIC = (r"(?:(?P<avg1>macro|micro|weighted)[- ]?(?:averaged?\s+)?)?(?P<metric>"
           + "|".join(_METRICS) + r")\b(?:[- ](?P<avg2>macro|micro|weighted)\b|\s*\((?P<avg3>macro|micro|weighted)\))?")
_HIGHER_BETTER = {"precision", "recall", "f1", "accuracy", "balanced_accuracy", "roc_auc", "average_precision", "r2",
                  "specificity"}
_FRACTIONS = _HIGHER_BETTER - {"r2"} | {"alert_rate", "error_rate", "false_positive_rate", "false_negative_rate",
                                       "mape"}
_DROP = r"drop(?:s|ped|ping)?|decrease[sd]?|decreasing|degrad(?:es|ed|ation|ing|e)|fall(?:s|ing)?|decline[sd]?|" \
        r"declining|dip(?:s|ped)?|go(?:es)?\s+down|reduction"
_RISE = r"rise[sd]?|rising|increase[sd]?|increasing|grow(?:s|ing|th)?|go(?:es)?\s+up|jump(?:s|ed)?|climb(?:s|ed)?|" \
        r"spike[sd]?"
_VERB = rf"{_DROP}|{_RISE}|worsen(?:s|ing)?|deteriorat(?:es|ion|ing)"
_RCONN = (r"(?:(?:(?:of|by)\s+)?(?:over|(?:more|greater)\s+than|exceeding|beyond|>=?|≥|at\s+least|in\s+excess\s+of)\s*"
          r"|(?:of|by)\s+)?")
_BASELINE = (r"(?:\s+(?:relative\s+to|vs\.?|versus|from|compared\s+(?:to|with)|against|below|above|over)\s+"
             r"(?:the\s+|its\s+)?baseline)?")
_PCT_LEAD = (rf"(?:\b(?:more|greater)\s+than\s+|>\s*|\bover\s+|\babove\s+)?(?:\ban?\s+)?\b(?P<n>{_NUM})\s*%\s+"
             r"(?:relative\s+)?")
_ACMP = (r"(?P<cmp>below|under|less\s+than|lower\s+than|<=?|≤|above|over|more\s+than|greater\s+than|higher\s+than|"
         r"exceeds?|exceeding|>=?|≥|(?:of\s+)?at\s+least|(?:of\s+)?at\s+most|no\s+less\s+than|no\s+more\s+than|"
         r"(?:must|should)\s+not\s+exceed|(?:floor|minimum|min|threshold|target|ceiling|maximum|max|limit)(?:\s+of)?|"
         r"of|=|:)")
_NEGATION = re.compile(r"\b(?:not|never|except|excluding|avoid|don't|doesn't|won't|no)\s+(?:\w+\s+){0,2}$", _F)


def _compile(*patterns: str) -> list[re.Pattern[str]]:
    return [re.compile(p, _F) for p in patterns]


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _duration(m: re.Match[str]) -> float:
    if m.group("half"):
        return 1800.0
    amount = _WORDS.get(m.group("dn").lower()) or _num(m.group("dn"))
    unit = m.group("du").lower()
    return amount * (86400 if unit.startswith("d") else 3600 if unit.startswith("h") else 60 if unit.startswith("m")
                     else 1)


def _clock(m: re.Match[str]) -> tuple[int, int] | None:
    """(hour, minute) of a time of day; None unless it is unmistakably one ("6am", "06:00", "midnight")."""
    if m.group("word"):
        return (0, 0) if m.group("word").lower() == "midnight" else (12, 0)
    if not (m.group("ap") or m.group("m")):
        return None
    hour, minute = int(m.group("h")), int(m.group("m") or 0)
    if m.group("ap"):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m.group("ap").lower().startswith("p") else 0)
    return (hour, minute) if hour < 24 and minute < 60 else None


def _metric(m: re.Match[str]) -> str:
    raw = re.sub(r"\s+", " ", m.group("metric").lower())
    name = next(n for pattern, n in _METRIC_LOOKUP if pattern.match(raw))
    average = m.group("avg1") or m.group("avg2") or m.group("avg3")
    return f"{name}_{average.lower()}" if average else name


def _bad_side(metric: str) -> str:
    base = metric.split("_")[0] if metric.split("_")[-1] in ("macro", "micro", "weighted") else metric
    return "below" if base in _HIGHER_BETTER or metric.rsplit("_", 1)[0] in _HIGHER_BETTER else "above"


def _rule(name: str, metric: str, direction: str, threshold: float | None, relative: bool, text: str) -> Found:
    return Found("alert", {"name": name, "metric": metric, "direction": direction, "threshold": threshold,
                           "relative": relative, "source_text": text}, text)


# Each reader turns one match into phrases (or a single "unreadable" phrase: matched, but not usable).
Reader = Callable[[re.Match[str]], list[Found]]


def _cron(m: re.Match[str]) -> list[Found]:
    expr = " ".join(m.group("expr").split())
    if "*" not in expr and not m.group("kw"):
        return []
    return [Found("cron", expr, m.group(0).strip())]


def _latency(m: re.Match[str]) -> list[Found]:
    text = m.group(0).strip()
    named = " ".join(filter(None, (m.groupdict().get("pa"), m.groupdict().get("pb"))))
    found = re.findall(_PCT, named, _F) if named else []
    note = "" if found else f"{text!r} names no percentile: p95 assumed"
    ms = _num(m.group("n")) * (1 if m.group("u").lower().startswith("m") else 1000)
    out = []
    for raw in found or ["p95"]:
        raw = raw.lower()
        pct = ("p50" if raw == "median" else "mean" if raw in ("mean", "average", "avg") else "max"
               if raw.startswith("max") else "p" + re.sub(r"(?:th)?[- ]percentile", "", raw).lstrip("p"))
        out.append(Found("latency", {"percentile": pct, "max_ms": ms, "source_text": text}, text, note))
        out.append(_rule(f"latency_{pct}_ms_above", f"latency_{pct}_ms", "above", ms, False, text))
    return out


def _lag(m: re.Match[str]) -> list[Found]:
    unit, amount, text = m.group("u").lower(), _num(m.group("n")), m.group(0).strip()
    if unit[0] in "ms" and unit not in ("messages", "msgs"):
        seconds = amount / 1000 if unit.startswith(("ms", "milli")) else amount * (60 if unit.startswith("m") else 1)
        return [_rule("consumer_lag_seconds_above", "consumer_lag_seconds", "above", seconds, False, text)]
    return [_rule("consumer_lag_messages_above", "consumer_lag_messages", "above", amount, False, text)]


_SCALES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "mm": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9,
           "billion": 1e9}
_PERS = {"sec": "second", "s": "second", "min": "minute", "hr": "hour", "h": "hour", "batch": "run", "job": "run",
         "nightly": "night", "daily": "day", "hourly": "hour", "weekly": "week", "monthly": "month"}
_UNITS = {"req": "requests", "reqs": "requests", "msgs": "messages", "docs": "documents"}
_ABBR = {"rps": "requests", "qps": "queries", "tps": "transactions", "eps": "events"}


def _throughput(m: re.Match[str]) -> list[Found]:
    groups = m.groupdict()
    amount = _num(m.group("n")) * _SCALES.get((groups.get("sc") or "").lower(), 1)
    text = m.group(0).strip()
    if groups.get("abbr"):
        abbr = groups["abbr"].lower()
        unit = _ABBR.get(abbr) or _UNITS.get(abbr.split("/")[0], abbr.split("/")[0])
        return [Found("throughput", {"amount": amount, "unit": unit, "per": "second", "source_text": text}, text)]
    unit = _UNITS.get(m.group("what").lower(), m.group("what").lower())
    per_raw = (groups.get("per") or groups.get("adv") or "").lower().replace("each ", "").replace("every ", "")
    per_raw = per_raw.replace("per ", "")
    note = "" if per_raw else f"{text!r} states no period: per run assumed"
    per = _PERS.get(per_raw, per_raw or "run")
    return [Found("throughput", {"amount": amount, "unit": unit, "per": per, "source_text": text}, text, note)]


_BYTES = {"tb": 1e12, "tib": 2**40, "gb": 1e9, "g": 1e9, "gib": 2**30, "gi": 2**30, "mb": 1e6, "m": 1e6,
          "mib": 2**20, "mi": 2**20}


def _memory(m: re.Match[str]) -> list[Found]:
    mib = round(_num(m.group("n")) * _BYTES[m.group("u").lower()] / 2**20, 1)
    return [Found("memory", {"max_mib": mib, "source_text": m.group(0).strip()}, m.group(0).strip())]


_CURRENCIES = {"$": "USD", "us$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD",
               "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "£": "GBP", "gbp": "GBP", "pound": "GBP",
               "pounds": "GBP"}
_COST_PERS = {"mo": "month", "yr": "year", "hr": "hour", "night": "run", "job": "run", "monthly": "month",
              "daily": "day", "weekly": "week", "yearly": "year", "annually": "year", "hourly": "hour",
              "nightly": "run"}


def _cost(m: re.Match[str]) -> list[Found]:
    groups, text = m.groupdict(), m.group(0).strip()
    currency = _CURRENCIES[(groups.get("cp") or groups.get("cs") or "").lower()]
    amount = _num(m.group("n")) * (1000 if groups.get("sc") else 1)
    raw = (groups.get("per") or groups.get("adv") or "").lower()
    per = _COST_PERS.get(raw, raw or "month")
    note = "" if raw else f"{text!r} states no period: per month assumed"
    return [Found("cost", {"amount": amount, "currency": currency, "per": per, "source_text": text}, text, note)]


def _relative(m: re.Match[str]) -> list[Found]:
    metric, text = _metric(m), m.group(0).strip()
    verb = (m.groupdict().get("verb") or m.groupdict().get("verb2") or "").lower()
    if re.fullmatch(_DROP, verb, _F):
        direction = "below"
    elif re.fullmatch(_RISE, verb, _F):
        direction = "above"
    else:
        direction = _bad_side(metric)
    name = f"{metric}_{'drop' if direction == 'below' else 'rise'}"
    return [_rule(name, metric, direction, _num(m.group("n")) / 100, True, text)]


def _absolute(m: re.Match[str]) -> list[Found]:
    metric, text, value = _metric(m), m.group(0).strip(), _num(m.group("n"))
    base = metric.rsplit("_", 1)[0] if metric.endswith(("_macro", "_micro", "_weighted")) else metric
    if m.group("pct"):
        if base not in _FRACTIONS:
            return [Found("unreadable", "a percentage of a metric that is not a fraction", text)]
        value /= 100
    elif base in _FRACTIONS and value > 1:
        return [Found("unreadable", f"{base} is a fraction between 0 and 1; say {value:g}% or {value / 100:g}", text)]
    direction = _bad_side(metric)
    return [_rule(f"{metric}_{direction}", metric, direction, value, False, text)]


def _drift(m: re.Match[str]) -> list[Found]:
    kind = (m.groupdict().get("kind") or "").lower()
    raw = m.groupdict().get("n") or m.groupdict().get("n2")
    threshold = _num(raw) if raw else None
    name = "prediction_drift" if kind in ("prediction", "output", "score") else "feature_drift"
    return [_rule(name, "prediction_psi" if name == "prediction_drift" else "psi", "above", threshold, False,
                  m.group(0).strip())]


def _fairness(m: re.Match[str]) -> list[Found]:
    text = m.group(0).strip()
    raw = m.groupdict().get("feats") or ""
    features = [w for w in re.split(r"\s*(?:,(?:\s*(?:and|or)\b)?|\band\b|&|/|\bor\b)\s*(?:(?:across|by|for|per)\s+)?(?:the\s+)?", raw)
                if w and w.lower() != "the"]
    threshold = _num(m.group("n")) if m.groupdict().get("n") else None
    out = [_rule("bias_disparity", "disparity_ratio", "below", threshold, False, text)]
    return out + [Found("fairness", {"sensitive_features": tuple(features), "source_text": text}, text)]


def _window(m: re.Match[str]) -> list[Found]:
    return [Found("window", _duration(m), m.group(0).strip())]


def _finish_by(m: re.Match[str]) -> list[Found]:
    at = _clock(m)
    return [Found("finish_by", at, m.group(0).strip())] if at else []


def _start(m: re.Match[str]) -> list[Found]:
    at = _clock(m)
    return [Found("start", at, m.group(0).strip())] if at else []


_FREQ = {"hourly": ("hour", 1), "hour": ("hour", 1), "daily": ("day", 1), "nightly": ("day", 1), "night": ("day", 1),
         "day": ("day", 1), "morning": ("day", 1), "evening": ("day", 1), "weekly": ("week", 1), "week": ("week", 1),
         "monthly": ("month", 1), "month": ("month", 1), "minute": ("minute", 1)}


def _frequency(m: re.Match[str]) -> list[Found]:
    words = m.group("w").lower().split()
    if words[0] == "twice":
        return [Found("every", ("twice", 1), m.group(0).strip())]
    return [Found("every", _FREQ[words[-1]], m.group(0).strip())]


def _every(m: re.Match[str]) -> list[Found]:
    text = m.group(0).strip()
    raw = (m.group("n") or "1").lower()
    n = _WORDS.get(raw) or int(raw)
    unit = {"min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour", "night": "day"}.get(
        m.group("u").lower().rstrip("s") if m.group("u").lower() not in ("mins", "hrs") else m.group("u").lower(),
        m.group("u").lower().rstrip("s"))
    if unit == "minute" and n >= 60:
        if n % 60:
            return [Found("unreadable", f"every {n} minutes cannot be written as one cron schedule", text)]
        unit, n = "hour", n // 60
    if unit == "hour" and n >= 24:
        if n % 24:
            return [Found("unreadable", f"every {n} hours cannot be written as one cron schedule", text)]
        unit, n = "day", n // 24
    if unit in ("week", "month") and n > 1:
        return [Found("unreadable", f"every {n} {unit}s cannot be written as one cron schedule", text)]
    return [Found("every", (unit, n), text)]


_DAY_NUMBERS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def _days(m: re.Match[str]) -> list[Found]:
    raw = m.group("days").lower()
    days: set[int] = set()
    for word in re.split(r"\s*(?:,|\band\b|&|/)\s*", raw):
        if re.match(r"week\s*days?|business|working", word):
            days |= {1, 2, 3, 4, 5}
        elif word.startswith("weekend"):
            days |= {0, 6}
        elif word[:3] in _DAY_NUMBERS:
            days.add(_DAY_NUMBERS[word[:3]])
    ordered = sorted(days)
    value = "1-5" if ordered == [1, 2, 3, 4, 5] else ",".join(map(str, ordered))
    return [Found("days", value, m.group(0).strip())]


def _monthday(m: re.Match[str]) -> list[Found]:
    day = int(m.groupdict().get("d") or m.groupdict().get("d2") or 1)
    if not 1 <= day <= 31:
        return [Found("unreadable", f"day {day} of the month does not exist", m.group(0).strip())]
    note = f"day {day} does not occur in every month: those months have no run" if day > 28 else ""
    return [Found("monthday", day, m.group(0).strip(), note)]


def _timezone(m: re.Match[str]) -> list[Found]:
    name = m.group("tz")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if re.match(r"(?:in|at)\s", m.group(0), re.I) and not all(p[:1].isupper() for p in name.split("/")):
            return []  # "in data/batches": a lower-case path, not a zone someone named (zones are Region/City)
        return [Found("unreadable", f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)", m.group(0).strip())]
    return [Found("timezone", "UTC" if name.upper() in ("UTC", "GMT") else name, m.group(0).strip())]


def _retrain(m: re.Match[str]) -> list[Found]:
    """'retrain weekly on Sunday 02:00': the schedule phrases of the retraining, read apart from the run's."""
    parts = [f for f in extract(m.group("sched"))[0] if f.kind in _SCHEDULE_KINDS]
    return [Found("retrain", tuple(parts), m.group(0).strip())] if parts else []


_SCHEDULE_KINDS = ("every", "days", "start", "monthday", "cron")

_READERS: list[tuple[list[re.Pattern[str]], Reader]] = [
    # First: a schedule said of the retraining is not the run's schedule.
    (_compile(r"\b(?:re-?train(?:s|ing|ed)?|refit(?:s|ting)?)(?:\s+(?:the\s+|a\s+new\s+)?(?:model|it))?"
              r"(?:\s+(?:on\s+fresh\s+data|from\s+scratch))?\s*(?:should\s+run\s+|runs?\s+|:\s*)?"
              r"(?P<sched>[^.;,]+?)(?=\s*(?:[.;,]|\band\b|$))"), _retrain),
    (_compile(r"(?:(?P<kw>\bcron(?:\s+expression)?|\bschedule)\s*[:=]?\s*)?[`'\"]?(?<![\w*/,-])(?P<expr>"
              r"[\d*/,-]+\s+[\d*/,-]+\s+[\d*/,-]+\s+[\w*/,-]+\s+[\w*/,-]+)(?![\w*/,-])[`'\"]?"), _cron),
    (_compile(rf"(?:\b(?P<pa>{_PCTS})\s+)?\b(?:latency|response\s+times?|inference\s+time|request\s+time)\b"
              rf"(?:\s*\(?(?:at\s+)?(?P<pb>{_PCTS})\)?)?\s*{_LCMP}{_LNUM}",
              rf"\b(?P<pa>{_PCTS})\s*{_LCMP}{_LNUM}",
              rf"\b(?:respond(?:s|ing)?|answer(?:s|ing)?|serve[sd]?|repl(?:y|ies))\s+(?:in|within|under|below|"
              rf"in\s+under|in\s+less\s+than)\s+{_LNUM}",
              rf"\b{_LNUM}\s+(?:(?P<pa>{_PCTS})\s+)?(?:latency|response\s+time)\b"), _latency),
    (_compile(rf"\b(?:(?:consumer|kafka|stream|processing)\s+)?lag\s+(?:(?:must|should)\s+(?:not\s+exceed|stay\s+"
              r"(?:under|below))|exceeds?|exceeding|goes\s+(?:above|over)|above|over|(?:more|greater|higher)\s+than|"
              rf">=?|under|below|less\s+than|<=?|of|at\s+most|within|is)\s*(?:an?\s+)?(?P<n>{_NUM})\s*"
              r"(?P<u>ms|milliseconds?|s|secs?|seconds?|minutes?|mins?|m|messages|msgs|events|records|offsets)\b"),
     _lag),
    (_compile(rf"\b(?P<n>{_NUM})\s*{_SCALE}\s+{_WHAT}\s*(?:/|per|a|an|each|every)\s*{_PER}\b",
              rf"\b(?P<n>{_NUM})\s*{_SCALE}\s*(?P<abbr>rps|qps|tps|eps|reqs?/s|requests/s|rows/s(?:ec)?|events/s|"
              r"msgs?/s|records/s)(?!\w)",
              rf"\b(?P<n>{_NUM})\s*{_SCALE}\s+{_WHAT}(?=\s+(?P<adv>nightly|daily|hourly|weekly|monthly|each\s+night|"
              r"every\s+night|each\s+day|every\s+day|per\s+run|each\s+run)\b)",
              rf"\b(?P<n>{_NUM})\s*{_SCALE}\s+{_WHAT}\b"), _throughput),
    (_compile(rf"\b(?:memory|ram|mem)\b(?:\s+(?:usage|use|footprint|limit|budget|cap|consumption|request))?\s*"
              rf"(?:(?:must|should)\s+(?:be|stay|remain)\s+|(?:is|stays)\s+)?(?:{_MCMP}\s*)?(?P<n>{_NUM})\s*{_MEMU}",
              rf"(?<!\w){_MCMP}\s*(?P<n>{_NUM})\s*{_MEMU}\s+(?:of\s+)?(?:memory|ram)\b",
              rf"\b(?P<n>{_NUM})\s*{_MEMU}\s+(?:of\s+)?(?:memory|ram)\b(?:\s+(?:limit|budget|cap|max(?:imum)?))?"),
     _memory),
    (_compile(rf"(?<![\w$€£])(?P<cp>us\$|\$|usd|€|eur|£|gbp)\s*(?P<n>{_NUM})\s*(?P<sc>k\b)?{_CPER}",
              rf"\b(?P<n>{_NUM})\s*(?P<sc>k)?\s*(?P<cs>usd|dollars?|bucks|eur|euros?|€|£|gbp|pounds?|\$)(?!\w){_CPER}"),
     _cost),
    (_compile(rf"\b{_METRIC}\s+(?:relative\s+)?(?P<verb>{_VERB})\s*{_RCONN}(?P<n>{_NUM})\s*%{_BASELINE}",
              rf"\b(?P<verb>{_VERB})\s+(?:in|of)\s+{_METRIC}\s*{_RCONN}(?P<n>{_NUM})\s*%{_BASELINE}",
              rf"{_PCT_LEAD}(?P<verb>{_VERB})\s+(?:in|of)\s+{_METRIC}",
              rf"{_PCT_LEAD}{_METRIC}\s+(?P<verb2>{_VERB})"),
     _relative),
    (_compile(rf"\b{_METRIC}(?:\s+(?:score|value))?\s*(?:(?:must|should|has\s+to|needs?\s+to)\s+(?:be|stay|remain|"
              r"not\s+go)\s+|(?:is|stays|remains|goes|falls|drops|dips|rises|climbs|gets|going|falling|dropping)\s+)?"
              rf"{_ACMP}\s*(?P<n>{_NUM})\s*(?P<pct>%)?(?![\w%]|\.\d)",
              rf"\b(?P<cmp>min(?:imum)?|max(?:imum)?)\s+{_METRIC}\s*(?:of\s+|:\s*|=\s*)?(?P<n>{_NUM})\s*(?P<pct>%)?"
              r"(?![\w%]|\.\d)"), _absolute),
    (_compile(rf"\b(?:(?P<kind>feature|data|covariate|input|prediction|output|score)\s+)?(?<!label )(?<!target )"
              r"(?<!concept )drift\b(?:\s+(?:alerts?|alerting|detection|monitoring|checks?))?"
              rf"(?:\s*\(?\s*(?:with\s+)?psi\s*(?:>=?|≥|above|over|of|at)?\s*(?P<n>{_NUM})\s*\)?"
              # "drift exceeds 0.2", "drift score goes above 0.25": a PSI, not a percentage
              rf"|\s+(?:(?:psi|score)\s+)?(?:is\s+|goes\s+)?(?:>=?|≥|above|over|exceeds?|exceeding|greater\s+than|"
              rf"more\s+than)\s*(?P<n2>{_NUM})(?!\d|\.\d|\s*%))?",
              rf"\bpsi\s*(?:>=?|≥|above|over|exceeds?|of|at)\s*(?P<n>{_NUM})"), _drift),
    (_compile(rf"\b(?:disparity|fairness|disparate\s+impact)\s+ratio\s+(?:below|under|<|less\s+than|of\s+at\s+least|"
              rf"at\s+least|>=?)\s*(?P<n>{_NUM})",
              r"\b(?:bias(?:ed)?|unfair(?:ness|ly)?|fairness|disparit(?:y|ies)|disparate\s+impact|discriminat(?:e|es|"
              r"ion|ory))\b(?:\s+(?:checks?|audit|analysis|reports?|alerts?|metrics?|monitoring|against))?"
              r"(?:\s+(?:across|by|between|for|over|on|regarding|w\.?r\.?t\.?|with\s+respect\s+to|per)\s+(?:the\s+)?"
              r"(?P<feats>[A-Za-z_][\w-]*(?:\s*(?:,(?:\s*(?:and|or)\b)?|and|&|/|or)\s*(?:(?:across|by|for|per)\s+)?(?:the\s+)?"
              r"[A-Za-z_][\w-]*){0,5})(?:\s+(?:groups?|columns?|attributes?|features?))?)?",
              r"\bsensitive\s+(?:attributes?|features?|columns?)\s*[:=]?\s*(?P<feats>[A-Za-z_][\w-]*(?:\s*(?:,|and|&|/)"
              r"\s*[A-Za-z_][\w-]*){0,5})"), _fairness),
    (_compile(r"\b(?:time\s*zone|tz)\s*[:=]?\s*(?P<tz>[A-Za-z]+/[A-Za-z_]+(?:/[A-Za-z_]+)?|utc|gmt)\b",
              r"\b(?:in|at)\s+(?P<tz>[A-Z][a-z]+/[A-Z][A-Za-z_]+)"), _timezone),
    (_compile(rf"\bevery\s+(?:(?P<n>\d+|{_WORD_RE})\s+)?(?P<u>minutes?|mins?|hours?|hrs?|days?|nights?|weeks?|"
              r"months?)\b"), _every),
    (_compile(r"\b(?P<w>hourly|daily|nightly|weekly|monthly|every\s+(?:night|evening|morning)|each\s+(?:night|day|"
              r"morning|evening|week|month|hour)|once\s+(?:a|per|every)\s+(?:day|night|week|month|hour)|twice\s+"
              r"(?:a|per)\s+day|twice\s+daily|per\s+night|(?:at|by)\s+night)\b"), _frequency),
    (_compile(rf"\b(?:(?:every|each|on|only\s+on)\s+)?(?P<days>(?:{_DAY})(?:\s*(?:,|and|&|/)\s*(?:{_DAY})){{0,6}})\b"),
     _days),
    (_compile(r"\bon\s+the\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?:\s+(?:day\s+)?of\s+(?:each|every|the)\s+month)?",
              r"\b(?:on\s+)?the\s+first\s+(?:day\s+)?of\s+(?:each|every|the)\s+month", r"\bon\s+day\s+(?P<d2>\d{1,2})"),
     _monthday),
    (_compile(rf"\b(?:(?:be\s+)?(?:done|ready|finished|completed?|available)\s+)?(?:by|before|no\s+later\s+than|"
              rf"until)\s+{_CLOCK}"), _finish_by),
    (_compile(rf"\b(?:at|starting\s+at|start(?:s|ing)?\s+at|from)\s+{_CLOCK}",
              # "weekly on Sunday 02:00", "nightly 1am": a time of day right after the day or the frequency (read,
              # and so blanked, by an earlier reader)
              rf"(?<=\0)\s*,?\s*{_CLOCK}"), _start),
    (_compile(rf"\b(?:window|deadline|sla|time\s*limit|timeout|time\s*budget|run\s*time|runtime|duration|"
              rf"wall[- ]?clock(?:\s+time)?)\s+(?:of\s+|is\s+|:\s*|=\s*|must\s+be\s+|under\s+|below\s+|<=?\s*|"
              rf"at\s+most\s+|within\s+)?(?:an?\s+)?{_DUR}",
              rf"\b(?:finish(?:es|ed)?|complete[sd]?|be\s+done|done|run(?:s)?|take[s]?|last[s]?|end[s]?)\s+"
              rf"(?:in|within|inside|under|in\s+under|in\s+less\s+than)\s+(?:an?\s+)?{_DUR}(?:\s+window)?",
              rf"(?:\b(?:an?|the)\s+)?{_DUR}(?:\s+|-)(?:run(?:ning)?\s+|time\s+|batch\s+|processing\s+|execution\s+)?"
              r"(?:window|slot|deadline|sla|time\s*limit|time\s*box|timebox|limit|max(?:imum)?|runtime|run\s*time)\b",
              rf"(?:\b(?:within|inside|in\s+under|in\s+less\s+than|in\s+no\s+more\s+than|under|below|less\s+than|"
              rf"at\s+most|no\s+(?:more|longer)\s+than|not\s+(?:more|longer)\s+than|max(?:imum)?(?:\s+of)?|up\s+to)|"
              rf"<=?|≤)\s*(?:an?\s+|the\s+)?{_DUR}(?:\s+(?:run\s+|time\s+|batch\s+)?(?:window|slot|time\s*frame|"
              r"deadline))?"), _window),
]


def _matches(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    for m in pattern.finditer(text):
        if m.group(0).strip() and not _NEGATION.search(text[max(0, m.start() - 40):m.start()]):
            yield m


def extract(text: str) -> tuple[list[Found], str]:
    """Every constraint phrase in ``text``, and the text with those phrases blanked out (same length)."""
    masked = text
    found: list[Found] = []
    for patterns, reader in _READERS:
        for pattern in patterns:
            for m in list(_matches(pattern, masked)):
                got = reader(m)
                if got:
                    found += [Found(f.kind, f.value, text[m.start():m.end()].strip(), f.note) for f in got]
                    # Blanked with NULs, not spaces: a later pattern's \s+ must not bridge a phrase already read.
                    masked = masked[:m.start()] + "\0" * (m.end() - m.start()) + masked[m.end():]
    return found, masked


_FILLER = set("""
a an the and or but also then it its this that these those we i me my our us you your they their is are be been being was
were will would shall should must can could may might has have had having to need needs needed want wants wanted
like please with on in at of for from as so when whenever if each every all any per than more less no not keep kept
stay stays remain remains make sure ensure run runs running ran job jobs scoring score scored batch batches pipeline
pipelines model models service api endpoint alert alerts alerting raise raises fire fires page pages notify send
trigger triggers monitor monitors monitoring track tracking detect detects detection check checks checking finish
finishes finished complete completes completion done ready time total overall budget cost costs spend spending limit
limits target targets goal threshold thresholds max maximum min minimum least most up under below over above within
around about approximately roughly get gets use uses using via always also only just whole entire should do does
time window schedule scheduled scheduling cron runtime via by there here one new our production prod data inference
predictions prediction scoring request requests throughput latency memory ram usage handle handles process processes
processing sustain sustains serve serves support supports able around target within go goes able let lets expected
expect expects required require requires requirement requirements constraint constraints need must-have important
baseline relative vs versus compared against
""".split())
_CUES = re.compile(r"\b(?:must|has\s+to|have\s+to|should|at\s+most|at\s+least|no\s+more\s+than|less\s+than|within|"
                   r"under|below|above|over|exceed\w*|budget|deadline|sla|limit|latency|throughput|memory|ram|cost|"
                   r"schedule|window|every|alert\w*|threshold|drift|bias|fair\w*)\b|[$€£%]|\bby\s+\d", _F)
_CLAUSE_SPLIT = re.compile(r"[;!?\n]|\.(?=\s|$)|,(?=\s)|\s(?:and|but|then|while|plus)\s", _F)


def residue(text: str, masked: str, *, strict: bool) -> list[str]:
    """The clauses of ``text`` whose unread words carry meaning: every one when ``strict`` (a ``Constraints:``
    item), else only those that sound like a constraint (free text is mostly not about constraints)."""
    out = []
    start = 0
    for cut in [*(m.start() for m in _CLAUSE_SPLIT.finditer(masked)), len(masked)]:
        clause, rest = text[start:cut], masked[start:cut]
        start = cut + 1
        words = re.findall(r"[a-z][a-z'-]*|\d+(?:\.\d+)?|[$€£%]", rest.lower())
        if not [w for w in words if w not in _FILLER]:
            continue
        clause = re.sub(r"^(?:and|but|then|while|plus)\s+", "", clause.strip(" \t,.;:-"), flags=_F)
        if clause and (strict or _CUES.search(rest)):
            out.append(clause)
    return out
