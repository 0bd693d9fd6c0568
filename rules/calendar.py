"""Working days in China: weekends and public holidays off, adjusted weekends (调休) on.

Pure domain code; the holidays are data (``catalog/calendar.json``, or ``CALENDAR_PATH``).
Deadlines follow the usual rule for administrative periods: the day the period starts on is
not counted, so "within 5 working days of receipt" ends at the end of the 5th working day
after the day of receipt. Dates are China Standard Time dates.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

from rules.errors import InvalidRulesFile
from rules.periods import china_date, end_of_day  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "catalog" / "calendar.json"
MAX_SPAN_DAYS = 3660  # no deadline is ten years of working days away


class InvalidCalendar(InvalidRulesFile):
    source = "working-day calendar"


class WorkCalendar:
    def __init__(self, version: str, holidays: dict[date, str], working_weekends: set[date],
                 years: dict[int, str]):
        self.version = version
        self.holidays = holidays
        self.working_weekends = working_weekends
        self.years = years  # year -> status (official | provisional)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> "WorkCalendar":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidCalendar([f"{path}: cannot read JSON: {exc}"]) from exc
        return cls.from_data(data)

    @classmethod
    def from_data(cls, data: dict) -> "WorkCalendar":
        problems: list[str] = []
        holidays: dict[date, str] = {}
        weekends: set[date] = set()
        years: dict[int, str] = {}
        if not data.get("version"):
            problems.append("calendar has no version")
        for year_text, spec in (data.get("years") or {}).items():
            try:
                year = int(year_text)
            except ValueError:
                problems.append(f"year {year_text!r} is not a year")
                continue
            status = spec.get("status")
            if status not in ("official", "provisional"):
                problems.append(f"{year}: status must be official or provisional")
            years[year] = status
            for holiday in spec.get("holidays") or []:
                name = holiday.get("name") or "(unnamed holiday)"
                first, last = _day(holiday.get("from"), problems), _day(holiday.get("to"), problems)
                if first is None or last is None:
                    continue
                if last < first or (last - first).days > 15:
                    problems.append(f"{year} {name}: 'to' must be 0-15 days after 'from'")
                    continue
                day = first
                while day <= last:
                    if day.year != year:
                        problems.append(f"{year} {name}: {day} is not in {year}")
                    holidays[day] = name
                    day += timedelta(days=1)
            for text in spec.get("working_weekends") or []:
                day = _day(text, problems)
                if day is None:
                    continue
                if day.weekday() < 5:
                    problems.append(f"{year}: working weekend {day} is a {day:%A}, not a weekend")
                if day.year != year:
                    problems.append(f"{year}: working weekend {day} is not in {year}")
                weekends.add(day)
        for day in sorted(set(holidays) & weekends):
            problems.append(f"{day} is both a holiday and an adjusted working day")
        if problems:
            raise InvalidCalendar(problems)
        return cls(data["version"], holidays, weekends, years)

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        if day in self.working_weekends:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself not counted);
        ``days == 0``: ``start`` if it is a working day, else the next working day."""
        if days < 0:
            raise ValueError("days must not be negative")
        day, counted = start, 0
        if days == 0:
            while not self.is_working_day(day):
                day += timedelta(days=1)
            return day
        for _ in range(MAX_SPAN_DAYS):
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
                if counted == days:
                    return day
        raise ValueError(f"{days} working days after {start} is beyond {MAX_SPAN_DAYS} days")

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``(start, end]``: how many a deadline has used by ``end``."""
        if end <= start:
            return 0
        return sum(1 for n in range(1, (end - start).days + 1)
                   if self.is_working_day(start + timedelta(days=n)))

    def deadline(self, received: datetime, days: int) -> date:
        """The last day of a ``days``-working-day period starting on the day of ``received``."""
        return self.add_working_days(china_date(received), days)


def is_overdue(due: date, as_of: datetime) -> bool:
    """A case due on ``due`` is overdue from the start of the next day (China time)."""
    return as_of >= end_of_day(due)


def _day(text, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        problems.append(f"{text!r} is not a date (YYYY-MM-DD)")
        return None
