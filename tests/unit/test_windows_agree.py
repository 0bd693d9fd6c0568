"""Restrictions, scoring and repair see the same record end its windows at the same instant.

Each service gets the record its own way: restrictions reads it as the agency wrote it (its
offset kept), scoring and repair as their stores give it back (UTC). Instants are drawn with
month ends and 16:00-24:00 UTC (already the next day in China) over-represented: there,
counting months on the UTC instant gave a window one day longer than counting in China.
"""
import calendar
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.violation import ViolationSchema
from rules.measures import Catalog
from rules.periods import CHINA_TZ, add_months, china_date
from rules.repair import RecordState, Rules
from rules.score_model import ScoreModel, violation_facts
from tests.factories import violation

UTC = timezone.utc
CATALOG, MODEL, RULES = Catalog.load(), ScoreModel.load(), Rules.load()
NOW = datetime.now(UTC)
LISTING_MEASURES = {mid for mid, m in CATALOG.measures.items()
                    if m.duration["kind"] == "follows_listing"}


def _instant(year, month, back, hour, minute):
    day = max(calendar.monthrange(year, month)[1] - back, 1)
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


instants = st.builds(
    _instant, year=st.integers(2021, 2026), month=st.integers(1, 12),
    back=st.one_of(st.integers(0, 2), st.integers(0, 30)),  # month ends, or any day
    hour=st.one_of(st.integers(16, 23), st.integers(0, 23)), minute=st.integers(0, 59),
).filter(lambda t: t < NOW - timedelta(days=2))
zones = st.sampled_from([UTC, CHINA_TZ, timezone(timedelta(hours=-5))])
penalties = st.sampled_from([
    [{"type": "fine", "amount": "100.00"}],                                   # short
    [{"type": "public_criticism"}, {"type": "fine", "amount": "10000.00"}],   # short
    [{"type": "fine", "amount": "50000.00"}],                                 # long
    [{"type": "suspension", "months": 47}],                                   # extended
    [{"type": "occupational_ban", "months": 61}, {"type": "fine", "amount": "1.00"}],
])


def stored(value):
    """What a store gives back: every instant in UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, dict):
        return {k: stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stored(v) for v in value]
    return value


@settings(max_examples=300, deadline=None)
@given(decided=instants, listed_after=st.integers(0, 72 * 60), zone=zones, given_penalties=penalties)
def test_the_three_services_end_the_same_windows_on_the_same_instant(
        decided, listed_after, zone, given_penalties):
    listed = min(decided + timedelta(minutes=listed_after), NOW - timedelta(days=1))
    body = violation(
        category="product_quality", severity="minor", penalties=given_penalties,
        occurred_at=(decided - timedelta(days=3)).astimezone(zone).isoformat(),
        decided_at=decided.astimezone(zone).isoformat(),
        listing={"list": "serious_violation", "listed_at": listed.astimezone(zone).isoformat()})
    as_given = ViolationSchema().load(body)
    as_stored = stored(as_given)
    vid = f"{as_given['agency_code']}/{as_given['document_number']}"

    # restrictions: the measures that follow the listing end with it
    decision = CATALOG.decide(as_given)
    listing_ends = {m["ends_at"] for m in decision.measures if m["measure"].id in LISTING_MEASURES}
    fixed = {m["measure"].id: m["ends_at"] for m in decision.measures
             if m["measure"].duration["kind"] == "fixed_months"}
    # repair: the listing and the penalty's publicity, from its store
    state = RecordState(vid, as_stored)
    repair_listing_end = RULES.listing_window(as_stored)[1]
    repair_publicity_end = RULES.publicity_window(as_stored)[1]
    # scoring: its facts, from its store
    fact = violation_facts(vid, as_stored)

    assert listing_ends == {repair_listing_end}
    assert repair_listing_end == add_months(listed, 36)
    assert repair_listing_end.astimezone(CHINA_TZ).time() == listed.astimezone(CHINA_TZ).time()
    assert MODEL.publicity_end(fact) == repair_publicity_end
    assert MODEL.publicity_end(violation_facts(vid, as_given)) == repair_publicity_end
    for mid, end in fixed.items():  # the same whether read as given or as stored
        assert CATALOG.window(CATALOG.measures[mid], as_stored)[1] == end

    # what each shows on either side of the end: one China day for all three
    last_day = china_date(repair_listing_end) - timedelta(days=1)
    before = datetime.combine(last_day, datetime.max.time(), CHINA_TZ)
    assert RULES.listing_public(state, before)  # the whole last day: still listed
    assert RULES.listing_public(state, repair_listing_end) is None
    assert MODEL.score([fact], last_day).risk_class == "D"
    assert MODEL.score([fact], china_date(repair_listing_end)).risk_class != "D"
    (contribution,) = MODEL.score([fact], china_date(decided)).contributions
    assert contribution["publicity_ends_on"] == china_date(repair_publicity_end).isoformat()
