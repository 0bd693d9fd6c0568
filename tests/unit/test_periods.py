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
    small = {**record, "penalties": [{"type": "fine", "amount": "100"}],
             "published_at": record["decided_at"]}
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
    (lambda d: d["publicity"].update(published_procedures=["summary", "secret"]),
     "publicity.published_procedures: must be a non-empty list"),
    (lambda d: d["publicity"].update(published_procedures=[]), "published_procedures"),
    (lambda d: d["publicity"].update(publication_deadline_working_days=0),
     "publication_deadline_working_days: must be a positive"),
    (lambda d: d["publicity"]["short_when"].update(fine_at_most_by_province={"140": "5000"}),
     "'140' is not a two-digit province code"),
    (lambda d: d["publicity"]["short_when"].update(fine_at_most_by_province={"14": "-1"}),
     "fine_at_most_by_province.14: must be an amount >= 0"),
    (lambda d: d["publicity"].update(starts_from="decision"), "publicity: unknown key 'starts_from'"),
])
def test_invalid_periods_are_refused_with_the_problem_named(change, problem):
    data = copy.deepcopy(DATA)
    change(data)
    with pytest.raises(InvalidPeriods) as info:
        Periods.from_data(data)
    assert any(problem in p for p in info.value.problems), info.value.problems


# -- Order 45 (as amended by Order 101, 2025): arts. 2, 9 and 13 ----------------------------
PERIODS = Periods.shipped()


def penalty(decided_at: str, penalties, **fields) -> dict:
    record = ViolationSchema().load(violation(decided_at=decided_at,
                                              occurred_at="2026-01-01T00:00:00+08:00",
                                              penalties=penalties, listing=None))
    record.update(fields)  # violation record v2 fields (procedure, published_at, place_code)
    return record


FINE = [{"type": "fine", "amount": "50000.00"}]


def test_publicity_runs_from_the_reported_publication_day():
    # art. 13: 自公示之日起届满三年的，停止公示.
    published = datetime(2026, 3, 2, 9, 30, tzinfo=CHINA_TZ)
    record = penalty("2026-02-10T10:00:00+08:00", FINE, published_at=published)
    assert PERIODS.publicity_window(record) == (published, datetime(2029, 3, 2, 9, 30,
                                                                    tzinfo=CHINA_TZ))
    assert not PERIODS.publication_assumed(record)


def test_without_a_reported_publication_the_20_working_day_deadline_is_assumed():
    # art. 9: 自作出行政处罚决定之日起二十个工作日内 … 公示. Decided Monday 2026-03-02: the 20th
    # working day after it is Monday 2026-03-30 (no holiday between).
    record = penalty("2026-03-02T10:00:00+08:00", FINE)
    start = datetime(2026, 3, 30, 0, 0, tzinfo=CHINA_TZ)
    assert PERIODS.publicity_window(record) == (start, datetime(2029, 3, 30, tzinfo=CHINA_TZ))
    assert PERIODS.publication_assumed(record)
    # Holidays are not working days: decided 2026-09-25 (Friday), the National Day week
    # (10-01..10-07 in catalog/calendar.json) is skipped.
    calendar = PERIODS.calendar
    assert PERIODS.publication_deadline(datetime(2026, 9, 25, 10, tzinfo=CHINA_TZ)).date() == \
        calendar.add_working_days(date(2026, 9, 25), 20)
    # A stored record (naive UTC) gets a naive UTC instant: 00:00 in China is 16:00Z before.
    naive = {**record, "decided_at": datetime(2026, 3, 2, 2, 0)}
    assert PERIODS.publicity_start(naive) == datetime(2026, 3, 29, 16, 0)
    # Reported later: the reported day replaces the assumed one.
    reported = {**record, "published_at": datetime(2026, 3, 10, 8, tzinfo=CHINA_TZ)}
    assert PERIODS.publicity_window(reported)[0] == datetime(2026, 3, 10, 8, tzinfo=CHINA_TZ)


def test_a_deadline_instant_between_16_and_24_utc_counts_its_china_day():
    # 2026-03-01T17:00Z is Monday 2 March 01:00 in China: the same deadline as a decision
    # on 2 March in China.
    late = penalty("2026-03-01T17:00:00+00:00", FINE)
    assert PERIODS.publicity_start(late) == datetime(2026, 3, 30, tzinfo=CHINA_TZ)


def test_summary_procedure_and_no_penalty_are_never_published():
    # art. 2: 对适用普通程序作出行政处罚决定的相关信息 … 公示; 仅受到警告行政处罚的不予公示.
    summary = penalty("2026-03-02T10:00:00+08:00", [{"type": "fine", "amount": "200.00"}],
                      procedure="summary")
    assert PERIODS.publicity_window(summary) is None
    assert "summary procedure" in PERIODS.unpublished_reason(summary)
    ordinary = {**summary, "procedure": "ordinary"}
    assert PERIODS.publicity_window(ordinary) is not None
    stored = {k: v for k, v in summary.items() if k != "procedure"}  # before v2: ordinary
    assert PERIODS.is_published(stored)
    none = {**ordinary, "penalties": [{"type": "none"}]}  # 不予行政处罚 (行政处罚法 art. 33)
    assert PERIODS.publicity_window(none) is None
    warned = {**ordinary, "penalties": [{"type": "warning"}]}
    assert PERIODS.publicity_window(warned) is None


def test_the_small_fine_limit_is_the_province_s_where_one_is_configured():
    # art. 13 para. 2: 较低数额罚款由省级以上市场监督管理部门结合工作实际规定. None is held
    # verbatim, so the shipped file has no province entry; one configured applies by place.
    assert DATA["publicity"]["short_when"]["fine_at_most_by_province"] == {}
    data = copy.deepcopy(DATA)
    data["publicity"]["short_when"]["fine_at_most_by_province"] = {"14": "30000"}
    periods = Periods.from_data(data, PERIODS.calendar)
    published = datetime(2026, 3, 2, tzinfo=CHINA_TZ)
    shanxi = penalty("2026-03-02T10:00:00+08:00", [{"type": "fine", "amount": "20000.00"}],
                     published_at=published, place_code="140105")
    assert periods.publicity_end(shanxi) == datetime(2026, 6, 2, tzinfo=CHINA_TZ)   # short
    assert PERIODS.publicity_end(shanxi) == datetime(2029, 3, 2, tzinfo=CHINA_TZ)   # default
    fujian = {**shanxi, "place_code": "350100"}
    assert periods.publicity_end(fujian) == datetime(2029, 3, 2, tzinfo=CHINA_TZ)
    at_limit = {**shanxi, "penalties": [{"type": "fine", "amount": "30000.00"}]}
    over = {**shanxi, "penalties": [{"type": "fine", "amount": "30000.01"}]}
    assert periods.is_short(at_limit) and not periods.is_short(over)
