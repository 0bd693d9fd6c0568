"""The working-day calendar: weekends, public holidays and adjusted working weekends (调休)."""
from datetime import date, datetime, timedelta, timezone

import pytest

from contracts.common import CHINA_TZ
from rules.calendar import InvalidCalendar, WorkCalendar, china_date, is_overdue

CAL = WorkCalendar.load()


def test_both_years_are_covered_and_2027_is_marked_provisional():
    assert CAL.years == {2026: "official", 2027: "provisional"}
    assert CAL.covers(date(2026, 1, 1)) and CAL.covers(date(2027, 12, 31))
    assert not CAL.covers(date(2028, 1, 3))


@pytest.mark.parametrize("day, working", [
    ("2026-11-27", True),    # Friday
    ("2026-11-28", False),   # Saturday
    ("2026-11-29", False),   # Sunday
    ("2026-10-01", False),   # National Day (Thursday)
    ("2026-10-07", False),   # last day of the National Day holiday (Wednesday)
    ("2026-10-08", True),    # back to work (Thursday)
    ("2026-10-10", True),    # adjusted working Saturday (调休)
    ("2026-09-20", True),    # adjusted working Sunday
    ("2026-02-14", True),    # Saturday before Spring Festival, adjusted working day
    ("2026-02-16", False),   # Spring Festival (Monday)
    ("2026-02-23", False),   # Spring Festival, last day (Monday)
    ("2026-02-24", True),
    ("2026-01-04", True),    # Sunday after New Year, adjusted working day
    ("2026-05-09", True),    # Saturday after Labour Day, adjusted working day
    ("2026-06-19", False),   # Dragon Boat Festival (Friday)
    ("2027-10-09", True),    # provisional 2027 data: adjusted working Saturday
    ("2028-03-06", True),    # not covered: Monday-Friday
    ("2028-03-04", False),
])
def test_working_days(day, working):
    assert CAL.is_working_day(date.fromisoformat(day)) is working


def test_deadline_skips_the_national_day_holiday_and_counts_the_adjusted_saturday():
    # Received Wednesday 30 September 2026; 1-7 October off; Thursday 8, Friday 9 and the
    # adjusted Saturday 10 October are working days.
    assert CAL.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert CAL.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert CAL.add_working_days(date(2026, 9, 30), 4) == date(2026, 10, 12)


def test_deadline_across_the_spring_festival():
    # Friday 13 February 2026; Saturday 14 is a working day; 15-23 February off.
    assert CAL.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert CAL.add_working_days(date(2026, 2, 13), 2) == date(2026, 2, 24)


def test_the_day_of_receipt_is_not_counted_and_zero_days_means_the_next_working_day():
    assert CAL.add_working_days(date(2026, 11, 27), 1) == date(2026, 11, 30)  # Fri -> Mon
    assert CAL.add_working_days(date(2026, 11, 28), 0) == date(2026, 11, 30)  # Sat -> Mon
    assert CAL.add_working_days(date(2026, 11, 30), 0) == date(2026, 11, 30)
    with pytest.raises(ValueError):
        CAL.add_working_days(date(2026, 11, 30), -1)


def test_fifteen_working_days_from_a_saturday_in_november():
    assert CAL.add_working_days(date(2026, 11, 28), 15) == date(2026, 12, 18)
    assert CAL.working_days_between(date(2026, 11, 28), date(2026, 12, 18)) == 15


def test_deadline_counts_the_china_date_of_the_receipt_instant():
    # 23:30 UTC on Friday 27 November is Saturday 28 November in China.
    received = datetime(2026, 11, 27, 23, 30, tzinfo=timezone.utc)
    assert china_date(received) == date(2026, 11, 28)
    assert CAL.deadline(received, 1) == date(2026, 11, 30)


def test_overdue_from_the_first_instant_after_the_due_day_in_china():
    due = date(2026, 12, 18)
    last_moment = datetime(2026, 12, 18, 23, 59, 59, tzinfo=CHINA_TZ)
    assert not is_overdue(due, last_moment - timedelta(days=1))  # the day before
    assert not is_overdue(due, last_moment)                     # the day itself
    assert is_overdue(due, last_moment + timedelta(seconds=1))  # the day after
    assert is_overdue(due, datetime(2026, 12, 18, 16, 0, tzinfo=timezone.utc))  # 00:00 CST 19th


def test_holidays_are_configurable_as_data():
    cal = WorkCalendar.from_data({"version": "t", "years": {"2030": {
        "status": "official", "holidays": [{"name": "x", "from": "2030-03-04", "to": "2030-03-05"}],
        "working_weekends": ["2030-03-09"]}}})
    assert not cal.is_working_day(date(2030, 3, 4))
    assert cal.is_working_day(date(2030, 3, 9))
    assert cal.add_working_days(date(2030, 3, 1), 1) == date(2030, 3, 6)


def test_invalid_calendar_names_every_problem():
    with pytest.raises(InvalidCalendar) as exc:
        WorkCalendar.from_data({"years": {"2026": {
            "status": "maybe",
            "holidays": [{"name": "bad", "from": "2026-05-05", "to": "2026-05-01"},
                         {"name": "x", "from": "2026-13-01", "to": "2026-13-02"}],
            "working_weekends": ["2026-11-30", "2026-10-03"],
            "extra": 1}}})
    text = "\n".join(exc.value.problems)
    assert "no version" in text
    assert "status must be official or provisional" in text
    assert "'to' must be 0-15 days after 'from'" in text
    assert "'2026-13-01' is not a date" in text
    assert "2026-11-30 is a Monday" in text


def test_a_day_cannot_be_both_holiday_and_working_weekend():
    with pytest.raises(InvalidCalendar, match="both a holiday and an adjusted working day"):
        WorkCalendar.from_data({"version": "t", "years": {"2026": {
            "status": "official", "holidays": [{"name": "x", "from": "2026-10-03", "to": "2026-10-03"}],
            "working_weekends": ["2026-10-03"]}}})
