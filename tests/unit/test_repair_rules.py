"""Publicity windows, credit-repair eligibility and the public record, at boundary dates."""
from datetime import datetime, timedelta

import pytest

from contracts.common import CHINA_TZ
from contracts.violation import ViolationSchema
from rules.repair import RecordState, Rules
from services.repair.publicity import mask, mask_text, public_record
from tests.factories import violation

RULES = Rules.load()
DECLARED = {"penalty_performed": True, "harm_removed": True,
            "commitment_letter": {"signed_by": "王经理", "signed_at": "2026-11-01"}}
DAY = timedelta(days=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)


def state(vid="FJAMR-350100/1", status="active", revoked_at=None, repairs=None,
          published_at=None, procedure=None, **overrides):
    """``published_at``: ``"decided"`` for published at the decision instant, an ISO instant,
    or None (not reported); ``procedure``: None leaves it absent (a stored record: ordinary).
    Set on the loaded record: the record fields of the violation contract v2 (issue 18)."""
    body = violation(listing=None, **overrides)
    record = ViolationSchema().load(body)
    if published_at is not None:
        record["published_at"] = (record["decided_at"] if published_at == "decided"
                                  else datetime.fromisoformat(published_at))
    if procedure is not None:
        record["procedure"] = procedure
    return RecordState(vid, record, status, revoked_at, repairs or {})


def general(**overrides):
    """A general product-quality fine: 3 years of publicity, repairable after 6 months;
    published at the decision instant unless ``published_at`` says otherwise."""
    base = dict(category="product_quality", severity="general",
                penalties=[{"type": "fine", "amount": "50000.00"}],
                occurred_at="2025-12-01T09:00:00+08:00", decided_at="2026-01-10T10:00:00+08:00",
                published_at="decided")
    base.update(overrides)
    return state(**base)


def listed(**overrides):
    base = dict(occurred_at="2025-03-01T09:00:00+08:00", decided_at="2025-04-01T10:00:00+08:00",
                published_at="decided")
    base.update(overrides)
    s = state(**base)
    s.record["listing"] = {"list": "serious_violation", "listed_at": at("2025-04-02T00:00:00")}
    return s


def blocks(result):
    return [b.rule for b in result.blocks]


# -- publicity windows ---------------------------------------------------------------------
def test_long_publicity_is_three_years_to_the_instant():
    s = general()
    end = at("2029-01-10T10:00:00")
    assert RULES.publicity_window(s.record) == (at("2026-01-10T10:00:00"), end)
    assert RULES.penalty_public(s, end - DAY)                          # the day before
    assert RULES.penalty_public(s, end - timedelta(seconds=1))
    assert RULES.penalty_public(s, end) is None                        # the day of
    assert RULES.penalty_public(s, end + DAY) is None                  # the day after
    assert RULES.penalty_public(s, at("2026-01-10T09:59:59")) is None  # before the decision


def test_public_criticism_or_small_fine_is_published_three_months():
    small = general(penalties=[{"type": "fine", "amount": "10000.00"},
                               {"type": "public_criticism"}],
                    decided_at="2026-06-15T09:00:00+08:00")
    end = at("2026-09-15T09:00:00")
    assert RULES.publicity_window(small.record)[1] == end
    assert RULES.penalty_public(small, end - DAY)
    assert RULES.penalty_public(small, end) is None
    assert RULES.penalty_public(small, end + DAY) is None
    bigger = general(penalties=[{"type": "fine", "amount": "10000.01"}])
    assert RULES.publicity_window(bigger.record)[1] == at("2029-01-10T10:00:00")


def test_warning_alone_is_never_published():
    warned = general(penalties=[{"type": "warning"}])
    assert RULES.publicity_window(warned.record) is None
    assert RULES.penalty_public(warned, at("2026-02-01T00:00:00")) is None


def test_a_longer_occupational_ban_extends_the_publicity_a_suspension_does_not():
    # Order 45 (2025) art. 13 para. 3: 限制开展生产经营活动、限制从业超过三年的，公示期按照实际
    # 限制期限执行; 责令停产停业 (suspension) is not named there.
    s = general(penalties=[{"type": "occupational_ban", "months": 48}])
    assert RULES.publicity_window(s.record)[1] == at("2030-01-10T10:00:00")
    s = general(penalties=[{"type": "suspension", "months": 48}])
    assert RULES.publicity_window(s.record)[1] == at("2029-01-10T10:00:00")


def test_month_ends_are_counted_on_the_china_calendar():
    # 31 August 00:30 in China is 30 August in UTC: six months on is 28 February in China.
    s = general(decided_at="2026-08-31T00:30:00+08:00", occurred_at="2026-08-01T00:00:00+08:00",
                penalties=[{"type": "fine", "amount": "100.00"}])
    assert RULES.publicity_window(s.record)[1] == at("2026-11-30T00:30:00")


def test_serious_list_ends_by_itself_three_years_after_listing():
    s = listed()
    end = at("2028-04-02T00:00:00")
    assert RULES.listing_public(s, end - DAY) == (at("2025-04-02T00:00:00"), end)
    assert RULES.listing_public(s, end) is None
    assert RULES.listing_public(s, end + DAY) is None


def test_revoked_record_is_public_only_before_its_revocation():
    revoked_at = at("2026-03-01T12:00:00")
    s = general(status="revoked", revoked_at=revoked_at)
    assert RULES.penalty_public(s, revoked_at - timedelta(seconds=1))
    assert RULES.penalty_public(s, revoked_at) is None


# -- eligibility ---------------------------------------------------------------------------
def test_penalty_publicity_repair_after_six_months_boundary():
    s = general()
    earliest = at("2026-07-10T10:00:00")
    before = RULES.check(s, [s], DECLARED, earliest - DAY)             # the day before
    assert blocks(before) == ["too_early"] and before.earliest_at == earliest
    assert before.scope == "publicity"
    assert before.as_dict()["earliest_date"] == "2026-07-10"
    assert RULES.check(s, [s], DECLARED, earliest).eligible             # the day of
    assert RULES.check(s, [s], DECLARED, earliest + DAY).eligible       # the day after


@pytest.mark.parametrize("category", ["food_safety", "drugs_medical_devices", "special_equipment"])
def test_food_drugs_and_special_equipment_wait_one_year(category):
    s = general(category=category, severity="general")
    earliest = at("2027-01-10T10:00:00")
    result = RULES.check(s, [s], DECLARED, at("2026-07-10T10:00:00"))
    assert blocks(result) == ["too_early"] and result.earliest_at == earliest
    assert not RULES.check(s, [s], DECLARED, earliest - DAY).eligible
    assert RULES.check(s, [s], DECLARED, earliest).eligible


@pytest.mark.parametrize("penalty", [{"type": "licence_revocation"},
                                     {"type": "suspension", "months": 6},
                                     {"type": "occupational_ban", "months": 60}])
def test_never_for_licence_revocation_suspension_or_occupational_ban(penalty):
    s = general(penalties=[{"type": "fine", "amount": "50000.00"}, penalty])
    result = RULES.check(s, [s], DECLARED, at("2026-11-01T00:00:00"))
    assert blocks(result) == ["not_repairable"]
    assert result.earliest_at is None and not result.eligible
    assert "ends on its own" in result.blocks[0].detail


def test_short_publicity_ends_before_repair_could_be_applied_for():
    s = general(penalties=[{"type": "public_criticism"}], decided_at="2026-06-15T09:00:00+08:00")
    assert blocks(RULES.check(s, [s], DECLARED, at("2026-07-01T00:00:00"))) == \
        ["publicity_ends_first"]
    assert blocks(RULES.check(s, [s], DECLARED, at("2026-10-01T00:00:00"))) == ["not_public"]


def test_warning_is_not_published_so_there_is_nothing_to_repair():
    s = general(penalties=[{"type": "warning"}])
    assert blocks(RULES.check(s, [s], DECLARED, at("2026-11-01T00:00:00"))) == ["not_published"]


def test_conditions_each_block_with_no_date_to_wait_for():
    s = general()
    result = RULES.check(s, [s], {}, at("2026-11-01T00:00:00"))
    assert blocks(result) == ["penalty_not_performed", "harm_not_removed", "no_commitment_letter"]
    assert result.earliest_at is None


def test_too_early_and_a_missing_letter_report_both_and_no_single_date():
    s = general()
    result = RULES.check(s, [s], {**DECLARED, "commitment_letter": None}, at("2026-02-01T00:00:00"))
    assert blocks(result) == ["too_early", "no_commitment_letter"]
    assert result.blocks[0].earliest_at == at("2026-07-10T10:00:00")
    assert result.earliest_at is None  # waiting alone would not do


def test_a_new_penalty_for_the_same_kind_of_violation_blocks_early_stop():
    # Order 45 (2025) art. 14(三): 未因同一类违法行为再次受到市场监督管理部门行政处罚.
    s = general()
    same_kind = general(vid="FJAMR-350100/2", severity="minor",
                        penalties=[{"type": "fine", "amount": "500.00"}],
                        decided_at="2026-05-01T10:00:00+08:00")
    other_kind = general(vid="FJAMR-350100/3", severity="serious", category="false_advertising",
                         decided_at="2026-05-01T10:00:00+08:00")
    earlier = general(vid="FJAMR-350100/4", occurred_at="2025-01-01T00:00:00+08:00",
                      decided_at="2025-06-01T10:00:00+08:00")
    revoked = general(vid="FJAMR-350100/5", status="revoked",
                      revoked_at=at("2026-06-01T00:00:00"), decided_at="2026-05-01T10:00:00+08:00")
    not_penalised = general(vid="FJAMR-350100/6", penalties=[{"type": "fine", "amount": "1.00"}],
                            decided_at="2026-05-01T10:00:00+08:00")
    not_penalised.record["penalties"] = [{"type": "none"}]  # 不予行政处罚 (vocabulary v2)
    as_of = at("2026-11-01T00:00:00")
    result = RULES.check(s, [s, same_kind], DECLARED, as_of)
    assert blocks(result) == ["new_penalty_same_kind"]
    assert "FJAMR-350100/2" in result.blocks[0].detail
    assert RULES.check(s, [s, other_kind, earlier, revoked, not_penalised], DECLARED,
                       as_of).eligible


def test_a_new_penalty_by_another_department_does_not_block():
    # art. 14(三) names penalties by 市场监督管理部门 only: a tax penalty is not one.
    s = general()
    tax = general(vid="STA-350100/2", decided_at="2026-05-01T10:00:00+08:00")
    tax.record["agency_code"] = "STA-350100"
    assert tax.record["category"] == s.record["category"]
    assert RULES.check(s, [s, tax], DECLARED, at("2026-11-01T00:00:00")).eligible


def test_on_the_serious_list_blocks_early_stop_of_another_penalty():
    # art. 14(四) (2025): 未在市场监督管理严重违法失信名单中.
    s = general()
    other = listed(vid="FJAMR-350100/9", decided_at="2026-03-01T10:00:00+08:00",
                   occurred_at="2026-02-01T00:00:00+08:00")
    other.record["listing"] = {"list": "serious_violation", "listed_at": at("2026-03-02T00:00:00")}
    as_of = at("2026-11-01T00:00:00")
    result = RULES.check(s, [s, other], DECLARED, as_of)
    assert "on_serious_list" in blocks(result) and result.earliest_at is None
    # Off the list (removed by repair): no longer blocks; the abnormal operations list never
    # did in the 2025 text (the 2021 text named it).
    other.repairs = {"serious_list": at("2026-10-01T00:00:00")}
    assert "on_serious_list" not in blocks(RULES.check(s, [s, other], DECLARED, as_of))
    abnormal = general(vid="FJAMR-350100/8", category="false_advertising",
                       decided_at="2026-03-01T10:00:00+08:00")
    abnormal.record["listing"] = {"list": "abnormal_operations",
                                  "listed_at": at("2026-03-02T00:00:00")}
    assert RULES.check(s, [s, abnormal], DECLARED, as_of).eligible


def test_a_licence_downgrade_is_never_stopped_early():
    # art. 14 para. 3: 降低资质等级 … 不得提前停止公示.
    s = general(penalties=[{"type": "fine", "amount": "50000.00"}, {"type": "licence_downgrade"}])
    result = RULES.check(s, [s], DECLARED, at("2026-11-01T00:00:00"))
    assert blocks(result) == ["not_repairable"] and result.earliest_at is None


def test_the_waiting_period_counts_from_the_publication_day():
    # art. 14: 行政处罚信息公示达到规定时限要求: six months from publication, not decision.
    s = general(published_at="2026-02-20T15:00:00+08:00")
    earliest = at("2026-08-20T15:00:00")
    assert blocks(RULES.check(s, [s], DECLARED, earliest - DAY)) == ["too_early"]
    assert RULES.check(s, [s], DECLARED, earliest - DAY).earliest_at == earliest
    assert RULES.check(s, [s], DECLARED, earliest).eligible


def test_a_summary_procedure_penalty_is_not_published_so_not_repaired():
    s = general(procedure="summary", penalties=[{"type": "fine", "amount": "200.00"}])
    result = RULES.check(s, [s], DECLARED, at("2026-03-01T00:00:00"))
    assert blocks(result) == ["not_published"] and "summary procedure" in result.blocks[0].detail


def test_serious_list_removal_after_one_year_boundary():
    s = listed()
    earliest = at("2026-04-02T00:00:00")
    before = RULES.check(s, [s], DECLARED, earliest - DAY)
    assert before.scope == "serious_list"
    assert blocks(before) == ["too_early"] and before.earliest_at == earliest
    assert RULES.check(s, [s], DECLARED, earliest).eligible
    assert RULES.check(s, [s], DECLARED, earliest + DAY).eligible


def test_after_removal_from_the_list_the_penalty_publicity_is_next():
    s = listed()
    s.repairs = {"serious_list": at("2026-05-01T00:00:00")}
    as_of = at("2026-05-02T00:00:00")
    assert RULES.listing_public(s, as_of) is None
    assert RULES.penalty_public(s, as_of)
    result = RULES.check(s, [s], DECLARED, as_of)
    assert result.scope == "publicity" and result.eligible  # food: 1 year after 2025-04-01


def test_publicity_repair_ends_publicity_at_the_decision_and_cannot_repeat():
    repaired_at = at("2026-08-01T15:00:00")
    s = general(repairs={"publicity": repaired_at})
    assert RULES.penalty_public(s, repaired_at - timedelta(seconds=1))
    assert RULES.penalty_public(s, repaired_at) is None
    assert blocks(RULES.check(s, [s], DECLARED, repaired_at + DAY)) == ["already_repaired"]


def test_revoked_record_cannot_be_repaired():
    s = general(status="revoked", revoked_at=at("2026-03-01T00:00:00"))
    result = RULES.check(s, [s], DECLARED, at("2026-11-01T00:00:00"))
    assert blocks(result) == ["record_revoked"] and result.scope is None


# -- the public record ---------------------------------------------------------------------
def test_public_record_shows_only_what_is_inside_its_window():
    long_ = listed(vid="FJAMR-350100/1")
    short = general(vid="FJAMR-350100/2", penalties=[{"type": "fine", "amount": "2000.00"}],
                    decided_at="2026-06-15T09:00:00+08:00")
    warned = general(vid="FJAMR-350100/3", penalties=[{"type": "warning"}])
    states = [long_, short, warned]
    code = long_.record["uscc"]

    def shown(as_of):
        body = public_record(code, states, {}, as_of, RULES)
        return ([p["document_number"] for p in body["penalties"]],
                [entry["document_number"] for entry in body["listings"]])

    doc = {s.violation_id: s.record["document_number"] for s in states}
    assert shown(at("2026-09-14T09:00:00")) == ([doc["FJAMR-350100/1"], doc["FJAMR-350100/2"]],
                                                [doc["FJAMR-350100/1"]])
    assert shown(at("2026-09-15T09:00:00")) == ([doc["FJAMR-350100/1"]], [doc["FJAMR-350100/1"]])
    assert shown(at("2028-03-31T10:00:00")) == ([doc["FJAMR-350100/1"]], [doc["FJAMR-350100/1"]])
    # Penalty published until 2028-04-01 10:00, listing until 2028-04-02 00:00.
    assert shown(at("2028-04-01T10:00:00")) == ([], [doc["FJAMR-350100/1"]])
    assert shown(at("2028-04-02T00:00:00")) == ([], [])
    assert shown(at("2028-04-03T00:00:00")) == ([], [])


def test_public_record_marks_a_record_under_review_while_the_objection_is_open():
    s = general()
    opened, decided = at("2026-03-01T10:00:00"), at("2026-03-10T10:00:00")
    reviews = {s.violation_id: [(opened, decided)]}

    def flag(as_of):
        return public_record(s.record["uscc"], [s], reviews, as_of, RULES)["penalties"][0][
            "under_review"]

    assert flag(opened - DAY) is False
    assert flag(opened) is True
    assert flag(decided - timedelta(seconds=1)) is True
    assert flag(decided) is False
    reviews = {s.violation_id: [(opened, None)]}
    assert public_record(s.record["uscc"], [s], reviews, at("2027-01-01T00:00:00"), RULES)[
        "penalties"][0]["under_review"] is True


def test_personal_data_is_masked():
    s = general(entity_name="张三 13812345678 个体户", legal_basis={
        "law": "Food Safety Law", "article": "124 (当事人身份证 350102199001011234)"})
    body = public_record(s.record["uscc"], [s], {}, at("2026-03-01T00:00:00"), RULES)
    text = str(body)
    assert "13812345678" not in text and "138****5678" in text
    assert "350102199001011234" not in text and "3****************4" in text
    assert body["uscc"] == s.record["uscc"]  # identifiers are not masked


def test_names_and_identity_numbers_of_natural_persons_are_masked():
    masked = mask({"legal_representative": {"name": "李四", "id_number": "110101199003077777"},
                   "document_number": "13812345678", "note": "id 110101199003077777"})
    assert masked["legal_representative"] == {"name": "李*", "id_number": "1****************7"}
    assert masked["document_number"] == "13812345678"
    assert masked["note"] == "id 1****************7"
    assert mask_text("USCC 91350100M000100Y44") == "USCC 91350100M000100Y44"


def test_legal_representative_is_published_masked_and_never_hashed():
    s = general(legal_representative={"name": "张三丰", "id_number": "11010119900307803X"})
    body = public_record(s.record["uscc"], [s], {}, at("2026-03-01T00:00:00"), RULES)
    rep = body["penalties"][0]["legal_representative"]
    assert rep == {"name": "张**", "id_number": "1****************X"}
    assert s.record["legal_representative"]["person_id"] not in str(body)
    assert "11010119900307803X" not in str(body)
