"""China time and the legal windows (rules/periods.py): one definition each, at the boundaries."""
import copy
import json
from datetime import date, datetime, timezone

import pytest

from contracts.violation import ViolationSchema
from rules.measures import Catalog
from rules.periods import (CHINA_TZ, DEFAULT_PATH, InvalidPeriods, Periods, add_months,
                           china_date, end_of_day)
from rules.repair import Rules
from rules.score_model import ScoreModel
from tests.factories import violation

DATA = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
UTC = timezone.utc


def test_months_are_added_on_the_china_calendar_not_the_utc_instant():
    # 17:00Z on 30 January is 01:00 on 31 January in China: a month on is 28 February 01:00
    # in China, 27 February 17:00Z. Counting on the UTC instant gave 28 February 17:00Z.
    moment = datetime(2026, 1, 30, 17, 0, tzinfo=UTC)
    assert add_months(moment, 1) == datetime(2026, 2, 27, 17, 0, tzinfo=UTC)
    assert add_months(moment, 1) == datetime(2026, 2, 28, 1, 0, tzinfo=CHINA_TZ)
    assert add_months(moment, 1).utcoffset() == CHINA_TZ.utcoffset(None)
    assert add_months(moment.astimezone(CHINA_TZ), 1) == add_months(moment, 1)


def test_month_ends_clamp_and_leap_years_count():
    assert add_months(datetime(2026, 3, 31, 12, tzinfo=CHINA_TZ), 1) == \
        datetime(2026, 4, 30, 12, tzinfo=CHINA_TZ)
    assert add_months(datetime(2027, 1, 30, 16, tzinfo=UTC), 13) == \
        datetime(2028, 2, 29, 0, tzinfo=CHINA_TZ)  # from 31 Jan 00:00 in China: 29 Feb 2028
    assert add_months(datetime(2027, 2, 28, 16, tzinfo=UTC), 12) == \
        datetime(2028, 3, 1, 0, tzinfo=CHINA_TZ)  # 16:00Z is already 1 March in China
    assert add_months(datetime(2026, 12, 31, 23, tzinfo=CHINA_TZ), 2) == \
        datetime(2027, 2, 28, 23, tzinfo=CHINA_TZ)
    assert add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)  # naive: UTC in, out


def test_the_china_day_of_an_instant_and_its_end():
    assert china_date(datetime(2026, 11, 27, 15, 59, 59, tzinfo=UTC)) == date(2026, 11, 27)
    assert china_date(datetime(2026, 11, 27, 16, 0, tzinfo=UTC)) == date(2026, 11, 28)
    assert end_of_day(date(2026, 11, 28)) == datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


def test_restrictions_scoring_and_repair_read_the_same_periods():
    periods = Periods.shipped()
    assert Catalog.load().periods is periods and ScoreModel.load().periods is periods
    assert Rules.load().periods is periods
    assert periods.listing_months("serious_violation") == 36
    assert periods.listing_months("abnormal_operations") is None


def test_a_listed_record_ends_on_the_same_instant_everywhere():
    record = ViolationSchema().load(violation(
        decided_at="2026-01-30T17:00:00Z", occurred_at="2026-01-01T00:00:00Z",
        listing={"list": "serious_violation", "listed_at": "2026-01-30T17:00:00Z"}))
    catalog, rules = Catalog.load(), Rules.load()
    listing_end = datetime(2029, 1, 30, 17, 0, tzinfo=UTC)  # 31 Jan 2029 01:00 in China
    assert catalog.window(catalog.measures["SL-PLAT"], record)[1] == listing_end
    assert rules.listing_window(record)[1] == listing_end
    small = {**record, "penalties": [{"type": "fine", "amount": "100"}]}
    assert ScoreModel.load().publicity_end(small) == rules.publicity_window(small)[1] == \
        datetime(2026, 4, 30, 1, 0, tzinfo=CHINA_TZ)


@pytest.mark.parametrize("change,problem", [
    (lambda d: d["publicity"].update(short_months=0), "publicity.short_months: must be a positive"),
    (lambda d: d["publicity"].update(short_months=48), "short_months must not exceed long_months"),
    (lambda d: d["publicity"].update(extended_by_penalty_months=["flogging"]),
     "unknown penalty type 'flogging'"),
    (lambda d: d["listings"].pop("abnormal_operations"), "no period for list 'abnormal_operations'"),
    (lambda d: d["listings"].update(blacklist={"months": 1, "basis": "x"}), "unknown list 'blacklist'"),
    (lambda d: d["listings"]["serious_violation"].update(months=-36), "must be a positive whole"),
    (lambda d: d["listings"]["serious_violation"].update(basis=""), "names no basis"),
    (lambda d: d["publicity"]["short_when"].update(fine_at_most="lots"), "fine_at_most"),
])
def test_invalid_periods_are_refused_with_the_problem_named(change, problem):
    data = copy.deepcopy(DATA)
    change(data)
    with pytest.raises(InvalidPeriods) as info:
        Periods.from_data(data)
    assert any(problem in p for p in info.value.problems), info.value.problems
