"""China time, calendar months and every legal window, each defined once.

Data in ``catalog/periods.json``; the arithmetic here is the only month arithmetic in the code.

- An instant's day is its calendar day in China (UTC+08:00; China has kept one offset, no
  daylight saving, since 1991). Naive instants are read as UTC.
- ``add_months`` counts whole calendar months on the China calendar, the day clamped to the
  month's last day: 2026-01-30T17:00Z is 01-31 01:00 in China, one month on is 02-28 01:00
  in China (2026-02-27T17:00Z). Counting on the UTC instant instead would give 02-28T17:00Z,
  a day later in China: restrictions and scoring once did, repair did not, so the same
  record's windows ended on different days.
- A window is ``[start, end)``; ``end`` None means open (until lifted or cured).
- The penalty publicity window (市场监督管理行政处罚信息公示规定, Order 45 as amended by Order
  101, 2025): only penalties decided under the ordinary procedure are published, a warning
  alone never (art. 2), and neither is a 不予行政处罚 decision (penalty type ``none``). It runs
  from the publication day (art. 13): the agency's ``published_at``, or while the agency has
  not reported it the publication deadline, the start of the 20th working day after the
  decision day in China (art. 9; ``rules.calendar``). Short (3 months) when the penalties are
  only public criticism, warnings and fines up to the small-fine limit (set by each province,
  art. 13 para. 2: a configurable default, per province where verified), long (3 years)
  otherwise, the actual period of an occupational ban longer than that (art. 13 para. 3).
  Scoring still fades an unpublished record's deduction over the window it would have.
- A listing's window: ``[listed_at, listed_at + months)`` (serious violation list 36 months),
  open when the list has no fixed period (abnormal operations).
- A measure's window (``measures.json`` durations): ``fixed_months`` from the decision,
  ``follows_listing`` the listing's window (without a listing: the long publicity period from
  the decision), ``until_cured`` open from the decision.
"""
from __future__ import annotations

import calendar
import json
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from rules.errors import InvalidRulesFile
from rules.vocabulary import LISTS, PENALTY_TYPES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "catalog" / "periods.json"
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
DURATION_KINDS = ("fixed_months", "follows_listing", "until_cured")
PROCEDURES = ("summary", "ordinary")  # 行政处罚法 第五章 第二节 简易程序, 第三节 普通程序
NO_PENALTY = "none"  # a 不予行政处罚 decision (行政处罚法 第三十三条): no penalty at all
PUBLICITY_KEYS = {"basis", "law_file", "published_procedures", "not_published_when_only",
                  "publication_deadline_working_days", "short_months", "long_months",
                  "short_when", "extended_by_penalty_months", "extended_comment"}


class InvalidPeriods(InvalidRulesFile):
    source = "periods"


# -- time ------------------------------------------------------------------------------------

def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def china_date(moment: datetime) -> date:
    """The calendar day of ``moment`` in China (naive instants are read as UTC)."""
    return _aware(moment).astimezone(CHINA_TZ).date()


day_of = china_date  # the name scoring has always used


def today() -> date:
    return china_date(datetime.now(timezone.utc))


def end_of_day(day: date) -> datetime:
    """The first instant after ``day`` ends in China: a deadline on ``day`` is met before it."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), CHINA_TZ)


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months counted on the China calendar (the day clamped to
    the month's end), as an instant in China time. A naive ``moment`` is read as UTC and the
    result is naive UTC too."""
    local = _aware(moment).astimezone(CHINA_TZ)
    month = local.month - 1 + months
    year, month = local.year + month // 12, month % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    result = local.replace(year=year, month=month, day=day)
    if moment.tzinfo is None:
        return result.astimezone(timezone.utc).replace(tzinfo=None)
    return result


months_after = add_months  # the name repair has always used


def is_active(starts_at: datetime, ends_at: datetime | None, lifted_at: datetime | None,
              as_of: datetime) -> bool:
    """Active on ``[starts_at, ends_at)``, and not after an early lift."""
    if as_of < starts_at:
        return False
    if ends_at is not None and as_of >= ends_at:
        return False
    if lifted_at is not None and as_of >= lifted_at:
        return False
    return True


# -- the legal periods -----------------------------------------------------------------------

def penalty_types(record: dict) -> set[str]:
    """The record's penalty types, without ``none`` (a 不予行政处罚 decision is no penalty)."""
    return {p["type"] for p in record.get("penalties") or ()} - {NO_PENALTY}


def province_of(record: dict) -> str | None:
    """The province (GB/T 2260, two digits) whose rules govern the record: the place of the
    violation, else the registration region in the USCC (characters 3-8)."""
    place = str(record.get("place_code") or "")
    if len(place) >= 2:
        return place[:2]
    uscc = str(record.get("uscc") or "")
    return uscc[2:4] if len(uscc) == 18 else None


class Periods:
    def __init__(self, data: dict, calendar=None):
        self.data = data
        self._calendar = calendar
        self.version: str = data["version"]
        rule = data["publicity"]
        self.publicity = rule
        self.basis: str = rule["basis"]
        self.unpublished = frozenset(rule["not_published_when_only"])
        self.published_procedures = frozenset(rule["published_procedures"])
        self.deadline_days: int = rule["publication_deadline_working_days"]
        self.short_months: int = rule["short_months"]
        self.long_months: int = rule["long_months"]
        self.short_types = frozenset(rule["short_when"]["penalty_types_only"])
        self.short_fine = Decimal(str(rule["short_when"]["fine_at_most"]))
        self.short_fine_by_province = {
            code: Decimal(str(amount))
            for code, amount in (rule["short_when"].get("fine_at_most_by_province") or {}).items()}
        self.extending = frozenset(rule["extended_by_penalty_months"])
        self.listings: dict[str, dict] = data["listings"]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH, calendar=None) -> "Periods":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidPeriods([f"cannot read JSON: {exc}"], f"periods {path}") from exc
        problems = validate(data)
        if problems:
            raise InvalidPeriods(problems, f"periods {path}")
        return cls(data, calendar)

    @classmethod
    def from_data(cls, data: dict, calendar=None) -> "Periods":
        problems = validate(data)
        if problems:
            raise InvalidPeriods(problems)
        return cls(data, calendar)

    @staticmethod
    @lru_cache(maxsize=1)
    def shipped() -> "Periods":
        """The periods of ``catalog/periods.json`` (for rules built without the loader)."""
        return Periods.load()

    @property
    def calendar(self):
        """The working-day calendar the publication deadline is counted on (the loader's, else
        ``catalog/calendar.json``)."""
        if self._calendar is None:
            from rules.calendar import WorkCalendar  # rules.calendar imports this module
            self._calendar = WorkCalendar.load()
        return self._calendar

    # -- publicity of a penalty (a loaded ViolationSchema record, or scoring's facts) --------
    def unpublished_reason(self, record: dict) -> str | None:
        """Why the penalty is never published (Order 45 art. 2), or None if it is."""
        procedure = record.get("procedure", "ordinary")
        if procedure not in self.published_procedures:
            return (f"decided under the {procedure} procedure: only penalties decided under the "
                    f"ordinary procedure are published")
        types = penalty_types(record)
        if not types:
            return "no penalty was imposed (不予行政处罚): nothing is published"
        if types <= self.unpublished:
            return f"only {', '.join(sorted(types))}: never published"
        return None

    def is_published(self, record: dict) -> bool:
        return self.unpublished_reason(record) is None

    def small_fine_limit(self, record: dict) -> Decimal:
        """The 较低数额罚款 limit for the record's province (art. 13 para. 2), else the default."""
        return self.short_fine_by_province.get(province_of(record), self.short_fine)

    def is_short(self, record: dict) -> bool:
        limit = self.small_fine_limit(record)
        return penalty_types(record) <= self.short_types and all(
            Decimal(str(p.get("amount") or 0)) <= limit
            for p in record["penalties"] if p["type"] == "fine")

    def publication_deadline(self, decided_at: datetime) -> datetime:
        """The start of the last day the agency may publish on (art. 9: within 20 working days
        of the decision; the decision day not counted), in the awareness of ``decided_at``."""
        day = self.calendar.add_working_days(china_date(decided_at), self.deadline_days)
        start = datetime.combine(day, time.min, CHINA_TZ)
        if decided_at.tzinfo is None:
            return start.astimezone(timezone.utc).replace(tzinfo=None)
        return start

    def publicity_start(self, record: dict) -> datetime:
        """The publication instant: ``published_at`` as the agency reported it, else the
        publication deadline (``publication_deadline``), replaced once it is reported."""
        published = record.get("published_at")
        if published is not None:
            return published
        return self.publication_deadline(record["decided_at"])

    def publication_assumed(self, record: dict) -> bool:
        return record.get("published_at") is None

    def publicity_end(self, record: dict) -> datetime:
        """The end of the penalty's publicity window, counted from the publication day (also
        for a record that is not published, whose score deduction fades over that window)."""
        start = self.publicity_start(record)
        if self.is_short(record):
            return add_months(start, self.short_months)
        months = max([self.long_months] + [int(p["months"]) for p in record["penalties"]
                                           if p["type"] in self.extending and p.get("months")])
        return add_months(start, months)

    def publicity_window(self, record: dict) -> tuple[datetime, datetime] | None:
        """``[start, end)`` of the penalty's publicity, or None if it is never published."""
        if not self.is_published(record):
            return None
        return self.publicity_start(record), self.publicity_end(record)

    # -- listings ----------------------------------------------------------------------------
    def listing_months(self, name: str) -> int | None:
        return self.listings[name]["months"]

    def listing_end(self, listing: dict) -> datetime | None:
        months = self.listing_months(listing["list"])
        return add_months(listing["listed_at"], months) if months else None

    def listing_window(self, listing: dict | None) -> tuple[datetime, datetime | None] | None:
        if not listing:
            return None
        return listing["listed_at"], self.listing_end(listing)

    # -- measures ----------------------------------------------------------------------------
    def measure_window(self, duration: dict, record: dict) -> tuple[datetime, datetime | None]:
        kind = duration["kind"]
        listing = record.get("listing")
        if kind == "follows_listing" and listing:
            return self.listing_window(listing)
        start = record["decided_at"]
        if kind == "fixed_months":
            return start, add_months(start, duration["months"])
        if kind == "follows_listing":  # no listing: the penalty's long publicity period
            return start, add_months(start, self.long_months)
        return start, None


def _months(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def validate(data) -> list[str]:
    """Every problem of a periods document; empty when it is valid."""
    if not isinstance(data, dict):
        return ["the periods must be a JSON object"]
    problems = []
    if not isinstance(data.get("version"), str) or not data.get("version"):
        problems.append("version: must be a non-empty string")
    for key in sorted(set(data) - {"version", "comment", "publicity", "listings"}):
        problems.append(f"unknown key {key!r}")
    rule = data.get("publicity")
    if not isinstance(rule, dict):
        problems.append("publicity: must be an object")
    else:
        for key in sorted(set(rule) - PUBLICITY_KEYS):
            problems.append(f"publicity: unknown key {key!r}")
        if not str(rule.get("basis") or "").strip():
            problems.append("publicity.basis: names no legal basis")
        procedures = rule.get("published_procedures")
        if not isinstance(procedures, list) or not procedures \
                or any(p not in PROCEDURES for p in procedures):
            problems.append(f"publicity.published_procedures: must be a non-empty list of "
                            f"procedures ({', '.join(PROCEDURES)})")
        if not _months(rule.get("publication_deadline_working_days")):
            problems.append("publicity.publication_deadline_working_days: must be a positive "
                            "whole number of working days")
        for key in ("short_months", "long_months"):
            if not _months(rule.get(key)):
                problems.append(f"publicity.{key}: must be a positive whole number of months")
        if _months(rule.get("short_months")) and _months(rule.get("long_months")) \
                and rule["short_months"] > rule["long_months"]:
            problems.append("publicity: short_months must not exceed long_months")
        short = rule.get("short_when")
        if not isinstance(short, dict):
            problems.append("publicity.short_when: must be an object")
            short = {}
        else:
            try:
                if Decimal(str(short.get("fine_at_most"))) < 0:
                    raise InvalidOperation
            except InvalidOperation:
                problems.append("publicity.short_when.fine_at_most: must be an amount >= 0")
            for key in sorted(set(short) - {"penalty_types_only", "fine_at_most",
                                            "fine_at_most_comment", "fine_at_most_by_province"}):
                problems.append(f"publicity.short_when: unknown key {key!r}")
            provinces = short.get("fine_at_most_by_province", {})
            if not isinstance(provinces, dict):
                problems.append("publicity.short_when.fine_at_most_by_province: must be an "
                                "object {province code: amount}")
                provinces = {}
            for code, amount in provinces.items():
                if not (isinstance(code, str) and len(code) == 2 and code.isdigit()):
                    problems.append(f"publicity.short_when.fine_at_most_by_province: {code!r} is "
                                    f"not a two-digit province code (GB/T 2260)")
                try:
                    if isinstance(amount, bool) or Decimal(str(amount)) < 0:
                        raise InvalidOperation
                except InvalidOperation:
                    problems.append(f"publicity.short_when.fine_at_most_by_province.{code}: "
                                    f"must be an amount >= 0")
        for key, types in (("not_published_when_only", rule.get("not_published_when_only")),
                           ("short_when.penalty_types_only", short.get("penalty_types_only")),
                           ("extended_by_penalty_months", rule.get("extended_by_penalty_months"))):
            if not isinstance(types, list):
                problems.append(f"publicity.{key}: must be a list of penalty types")
                continue
            for kind in types:
                if kind not in PENALTY_TYPES:
                    problems.append(f"publicity.{key}: unknown penalty type {kind!r} "
                                    f"(known: {', '.join(PENALTY_TYPES)})")
    listings = data.get("listings")
    if not isinstance(listings, dict):
        problems.append("listings: must be an object {list: {months, basis}}")
    else:
        for name in sorted(set(listings) - set(LISTS)):
            problems.append(f"listings: unknown list {name!r} (known: {', '.join(LISTS)})")
        for name in LISTS:
            spec = listings.get(name)
            if not isinstance(spec, dict):
                problems.append(f"listings: no period for list {name!r}")
                continue
            if spec.get("months") is not None and not _months(spec.get("months")):
                problems.append(f"listings.{name}.months: must be a positive whole number or "
                                f"null (open until the agency ends it)")
            if not str(spec.get("basis") or "").strip():
                problems.append(f"listings.{name}.basis: names no basis")
    return problems
