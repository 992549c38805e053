"""Five-field cron expressions: validated, described in words, and measured (runs per month, gap between runs).

A schedule stated in a mission ends up as a CronJob's ``spec.schedule``; the run window, the job deadline and
the monthly cost all depend on how often it fires, so the expression is checked and counted here rather than
trusted as text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Cron", "parse_cron", "CronError"]

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                       "dec"), start=1)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_SPAN_DAYS = 360
"""Firings are counted over twelve 30-day months, so "daily" is 30 runs a month (the figure costs quote)."""
_EPOCH = dt.date(2024, 1, 1)


class CronError(ValueError):
    """A cron expression that a CronJob would reject; the message names the field and the allowed range."""


@dataclass(frozen=True)
class Cron:
    """A validated five-field cron expression (minute hour day-of-month month day-of-week)."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday (7 is folded into 0)."""
    day_restricted: bool
    weekday_restricted: bool

    @property
    def fields(self) -> list[str]:
        return self.expression.split()

    @property
    def fixed_time(self) -> tuple[int, int] | None:
        """(hour, minute) when the expression fires once a day at one time, else None."""
        if len(self.hours) == 1 and len(self.minutes) == 1:
            return next(iter(self.hours)), next(iter(self.minutes))
        return None

    def _matches_day(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        dom, dow = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        # Vixie cron: when both day fields are restricted, a day matching either fires.
        if self.day_restricted and self.weekday_restricted:
            return dom or dow
        return dom and dow

    def _firings(self) -> list[int]:
        return _firings(self.expression)

    @property
    def runs_per_month(self) -> float:
        """Average firings in a 30-day month."""
        return round(len(self._firings()) / (_SPAN_DAYS / 30), 2)

    @property
    def min_interval_seconds(self) -> int | None:
        """Shortest gap between two consecutive firings (None when it fires at most once in the span)."""
        times = self._firings()
        if len(times) < 2:
            return None
        return 60 * min(b - a for a, b in zip(times, times[1:], strict=False))

    def describe(self, timezone: str = "UTC") -> str:
        """The schedule in words, e.g. "weekly on Monday at 03:00 UTC"; the expression itself when unusual."""
        m, h, dom, mon, dow = self.fields
        at = f"at {int(h):02d}:{int(m):02d} {timezone}" if h.isdigit() and m.isdigit() else ""
        if mon != "*":
            return f"cron `{self.expression}` ({timezone})"
        if dom == "*" and dow == "*":
            if h == "*" and m == "*":
                return "every minute"
            if h == "*" and m.startswith("*/"):
                return f"every {m[2:]} minutes"
            if h == "*" and m.isdigit():
                return "hourly" + (f" at minute {int(m)}" if int(m) else "")
            if h.startswith("*/") and m.isdigit():
                return f"every {h[2:]} hours" + (f" at minute {int(m)}" if int(m) else "")
            if at:
                return f"daily {at}"
            if m.isdigit() and re.fullmatch(r"\d+(,\d+)+", h):
                return "daily at " + ", ".join(f"{int(x):02d}:{int(m):02d}" for x in h.split(",")) + f" {timezone}"
        if at and dom == "*" and dow != "*":
            days = sorted(self.weekdays)
            if days == [1, 2, 3, 4, 5]:
                return f"on weekdays {at}"
            if days == [0, 6]:
                return f"on weekends {at}"
            return "weekly on " + ", ".join(DAY_NAMES[d] for d in days) + f" {at}"
        if at and dow == "*" and dom.isdigit():
            return f"monthly on day {int(dom)} {at}"
        if at and dow == "*" and dom.startswith("*/"):
            return f"every {dom[2:]} days {at}"
        return f"cron `{self.expression}` ({timezone})"


@lru_cache(maxsize=256)
def _firings(expression: str) -> list[int]:
    cron = parse_cron(expression)
    per_day = sorted(h * 60 + m for h in cron.hours for m in cron.minutes)
    out: list[int] = []
    for offset in range(_SPAN_DAYS):
        if cron._matches_day(_EPOCH + dt.timedelta(days=offset)):
            out.extend(offset * 1440 + t for t in per_day)
    return out


def _number(text: str, names: dict[str, int]) -> int | None:
    return int(text) if text.isdigit() else names.get(text.lower())


def _values(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        base, sep, step_text = part.partition("/")
        if sep and (not step_text.isdigit() or int(step_text) == 0):
            raise CronError(f"{name} step {step_text!r} in {text!r} is not a positive number")
        step = int(step_text) if sep else 1
        if base == "*":
            start, end = low, high
        else:
            bounds = [_number(b, names) for b in base.split("-")]
            if len(bounds) > 2 or None in bounds:
                raise CronError(f"{name} value {part!r} is not a number or a range")
            start = bounds[0]
            end = bounds[1] if len(bounds) == 2 else (high if sep else start)
        if not (low <= start <= end <= high):
            raise CronError(f"{name} {part!r} is outside {low}-{high}")
        out.update(range(start, end + 1, step))
    return frozenset(out)


@lru_cache(maxsize=256)
def parse_cron(expression: str) -> Cron:
    """Validate a five-field cron expression; raises :class:`CronError` naming the bad field."""
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(f"{expression!r} has {len(fields)} fields; a CronJob schedule has 5 "
                        "(minute hour day-of-month month day-of-week)")
    names: list[dict[str, int]] = [{}, {}, {}, _MONTHS, _DAYS]
    values = [_values(text, name, low, high, lookup)
              for text, (name, low, high), lookup in zip(fields, _FIELDS, names, strict=True)]
    weekdays = frozenset(d % 7 for d in values[4])
    return Cron(expression=" ".join(fields), minutes=values[0], hours=values[1], days=values[2], months=values[3],
                weekdays=weekdays, day_restricted=not fields[2].startswith("*"),
                weekday_restricted=not fields[4].startswith("*"))
