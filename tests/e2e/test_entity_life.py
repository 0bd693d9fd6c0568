"""The life of one entity, all six services as processes: listing, objection, credit repair
and automatic ends. At each step: the gate-keeping answer in every sector, the score, the
public record and the notices sent.

Score assertions after a repair depend on the scoring service reacting to ``RecordRepaired``
(built on another branch); they are made at the end of the test, after everything else was
checked, and say so.
"""
from datetime import datetime, timedelta, timezone

import pytest

from contracts.common import CHINA_TZ
from contracts.events import SECTORS
from rules.periods import Periods, months_after
from shared.agency_client import AgencyPublisher
from tests.factories import make_uscc, violation

pytestmark = pytest.mark.e2e

# T-SL-1 (Order 44 art. 15): the listing's measures, ending with it. A fine of 200,000 yuan
# gives no measure of its own (no revocation, no suspension: nothing in 政府采购法实施条例
# art. 19 that the catalog can verify), so the penalty's publicity repair lifts nothing more.
LISTING_ONLY = {"SL-LIC", "SL-PROC", "SL-SUP", "SL-NCP", "SL-HON", "SL-HON-OTHER", "SL-TAX",
                "SL-PLAT"}
PENALTY: set[str] = set()
FOLLOWS_LISTING = LISTING_ONLY
BARRED = {"honours"}  # the only prohibition: no SAMR honours (art. 15(四))
DAY = timedelta(days=1)


def ago(days: float) -> str:
    return (datetime.now(CHINA_TZ) - timedelta(days=days)).isoformat(timespec="seconds")


class Life:
    def __init__(self, system, code):
        self.system, self.code = system, code
        self.gate = system.session("gatekeeper", "bank-1")
        self.desk = system.session("regulator", "credit-desk")
        self.agency = system.session("agency", "FJAMR")
        self.platform = system.session("platform", "mall")

    def url(self, service, path):
        return self.system.url(service, path)

    def status(self, **params):
        r = self.gate.get(self.url("restrictions", f"/v1/entities/{self.code}/status"),
                          params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def active(self, **params):
        return {m["measure_id"] for e in self.status(**params)["sectors"].values()
                for m in e["measures"]}

    def public(self, **params):
        r = self.gate.get(self.url("repair", f"/v1/public/entities/{self.code}"), params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def score(self):
        return self.desk.get(self.url("scoring", f"/v1/scores/{self.code}")).json()

    def notices(self, subscriber):
        reader = self.platform if subscriber == "mall" else self.desk  # a platform sees its own
        r = reader.get(self.url("notifications", "/v1/notices"),
                              params={"subscriber": subscriber})
        return r.json()["notices"]

    def score_once_moved(self, previous, seconds=20.0):
        """The score after it moved from ``previous``, or as it is after ``seconds`` (the
        caller asserts on it; not moving is a failure there, after the other checks)."""
        try:
            return self.system.wait_for(lambda: (lambda s: s if s != previous else None)(
                self.score()["score"]), timeout=seconds, message="the score to move")
        except AssertionError:
            return self.score()["score"]

    def wait(self, predicate, message):
        return self.system.wait_for(predicate, timeout=60, message=message)


def test_life_of_one_entity(system):
    code = make_uscc("350100")
    life = Life(system, code)
    name = "福州生命周期食品有限公司"
    assert life.desk.put(life.url("registry", f"/v1/registry/entities/{code}"),
                         json={"name": name}).status_code in (200, 201)
    assert life.platform.post(life.url("registry", f"/v1/registry/entities/{code}/memberships"),
                              json={"platform_id": "mall", "shop_id": "s-7"}).ok
    assert life.platform.post(life.url("notifications", "/v1/subscriptions"), json={
        "subscriber_id": "mall", "kind": "platform", "platform_id": "mall"}).ok
    assert life.desk.post(life.url("notifications", "/v1/subscriptions"), json={
        "subscriber_id": "credit-dept", "kind": "department"}).ok  # a regulator registers it
    scores = {"before": life.score()["score"]}

    # -- 1. listing: a serious food-safety decision with a serious-violation listing -----------
    body = violation(uscc=code, entity_name=name, occurred_at=ago(420), decided_at=ago(400),
                     penalties=[{"type": "fine", "amount": "200000.00"}],
                     legal_representative={"name": "陈大文", "id_number": "11010119900307803X"},
                     listing={"list": "serious_violation", "listed_at": ago(400)})
    vid = f"{body['agency_code']}/{body['document_number']}"
    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as publisher:
        publisher.publish(body, correlation_id="life-1")

    life.wait(lambda: LISTING_ONLY | PENALTY <= life.active(), "the listing's measures")
    answer = life.status()
    assert set(answer["sectors"]) == set(SECTORS) and answer["record"] == "restricted"
    assert {s for s, e in answer["sectors"].items() if not e["may_pass"]} == BARRED
    listed = life.wait(lambda: (lambda s: s if s["risk_class"] == "D" else None)(life.score()),
                       "class D (serious violation list)")
    scores["listed"] = listed["score"]
    assert scores["listed"] < scores["before"]

    public = life.wait(lambda: (lambda p: p if p["listings"] else None)(life.public()),
                       "the listing in the public record")
    (penalty,) = public["penalties"]
    assert penalty["document_number"] == body["document_number"]
    assert penalty["legal_representative"] == {"name": "陈**", "id_number": "1****************X"}
    assert "11010119900307803X" not in str(public)
    assert [entry["list"] for entry in public["listings"]] == ["serious_violation"]

    # The platform is informed of the listing (no rule held tells it to clear the shop).
    mall = life.wait(lambda: (lambda n: n if n else None)(life.notices("mall")),
                     "the platform's notice")
    assert {(n["kind"], n["measure"]["id"], n["measure"]["effect"]) for n in mall} == {
        ("imposed", "SL-PLAT", "inform")}
    with_measures = set(SECTORS) - {"credit"}  # no verified basis for a credit measure
    dept = life.wait(lambda: (lambda n: n if {x["measure"]["sector"] for x in n} == with_measures
                              else None)(life.notices("credit-dept")), "notices in every sector")

    # Left alone, the listing ends three years after listing: the day before, of and after.
    end = months_after(datetime.fromisoformat(body["listing"]["listed_at"]), 36)
    assert FOLLOWS_LISTING <= life.active(as_of=(end - DAY).isoformat())
    assert not FOLLOWS_LISTING & life.active(as_of=end.isoformat())
    assert not FOLLOWS_LISTING & life.active(as_of=(end + DAY).isoformat())
    assert life.public(as_of=(end - DAY).isoformat())["listings"]
    assert life.public(as_of=end.isoformat())["listings"] == []
    assert life.public(as_of=(end + DAY).isoformat())["listings"] == []

    # -- 2. objection: under review everywhere, then upheld -----------------------------------
    objection = life.desk.post(life.url("repair", "/v1/objections"), json={
        "agency_code": body["agency_code"], "document_number": body["document_number"],
        "uscc": code, "applicant": {"name": name, "capacity": "entity"},
        "grounds": "the sampling report was for another batch"})
    assert objection.status_code == 201, objection.text
    objection = objection.json()
    answer = life.wait(lambda: (lambda a: a if a["records_under_review"] == [vid] else None)(
        life.status()), "the record under review at the gate")
    for sector in with_measures:
        entry = answer["sectors"][sector]
        assert entry["may_pass"] is (sector not in BARRED), sector
        assert entry["measures"] and all(m["under_review"] for m in entry["measures"]), sector
    public = life.public()
    assert public["penalties"][0]["under_review"] and public["listings"][0]["under_review"]
    overdue = life.desk.get(life.url("repair", "/v1/objections"), params={
        "overdue": "true", "as_of": (datetime.fromisoformat(objection["due_by"] + "T00:00:00+08:00")
                                     + DAY).isoformat()}).json()["objections"]
    assert [o["objection_id"] for o in overdue] == [objection["objection_id"]]

    decided = life.agency.post(life.url("repair", f"/v1/objections/{objection['objection_id']}"
                                                  "/decision"),
                               json={"outcome": "upheld", "reason": "report matches the batch"})
    assert decided.status_code == 200, decided.text
    life.wait(lambda: life.status()["records_under_review"] == [], "the review flag cleared")
    assert life.public()["penalties"][0]["under_review"] is False
    assert life.score()["score"] == scores["listed"]  # an objection changes no score
    assert len(life.notices("mall")) == len(mall)     # nor sends notices
    assert len(life.notices("credit-dept")) == len(dept)

    # -- 3. credit repair: removal from the serious violation list ----------------------------
    application = {"agency_code": body["agency_code"], "document_number": body["document_number"],
                   "uscc": code, "applicant": {"name": name, "capacity": "entity"},
                   "penalty_performed": True, "harm_removed": True,
                   "commitment_letter": {"signed_by": "陈大文", "signed_at": ago(1)[:10]}}
    refused = life.gate.post(life.url("repair", "/v1/repair/applications"), json=application)
    assert refused.status_code == 403  # a gate-keeper does not apply for anyone
    refused = life.desk.post(life.url("repair", "/v1/repair/applications"),
                             json={**application, "commitment_letter": None})
    assert refused.status_code == 422
    assert [b["rule"] for b in refused.json()["blocking"]] == ["no_commitment_letter"]
    first = life.desk.post(life.url("repair", "/v1/repair/applications"), json=application)
    assert first.status_code == 201, first.text
    assert first.json()["scope"] == "serious_list"
    decide = life.url("repair", f"/v1/repair/applications/{first.json()['application_id']}/decision")
    approved = life.agency.post(decide, json={"decision": "approved",
                                              "reason": "fine paid; recall completed"})
    assert approved.status_code == 200, approved.text
    assert life.agency.post(decide, json={"decision": "rejected",
                                          "reason": "changed my mind"}).status_code == 409

    life.wait(lambda: not LISTING_ONLY & life.active(), "the listing's measures lifted")
    answer = life.status()
    assert PENALTY <= life.active()
    assert all(e["may_pass"] for e in answer["sectors"].values())
    public = life.public()
    assert public["listings"] == [] and len(public["penalties"]) == 1
    lifted = life.wait(lambda: (lambda n: n if any(x["measure"]["id"] == "SL-PLAT" and
                                                   x["kind"] == "lifted" for x in n) else None)(
        life.notices("mall")), "the platform told SL-PLAT was lifted")
    (plat,) = [n for n in lifted if n["measure"]["id"] == "SL-PLAT" and n["kind"] == "lifted"]
    assert plat["reason"].startswith("credit repair approved")
    dept_lifts = life.wait(lambda: (lambda n: n if {x["measure"]["id"] for x in n
                                                    if x["kind"] == "lifted"} >= LISTING_ONLY
                                    else None)(life.notices("credit-dept")),
                           "the departments told the listing's measures were lifted")
    assert all("removed from the serious violation list" in n["reason"] for n in dept_lifts
               if n["kind"] == "lifted" and n["measure"]["id"] in LISTING_ONLY)
    scores["serious_list_repaired"] = life.score_once_moved(scores["listed"])

    # -- 4. credit repair: the penalty's publicity ends ---------------------------------------
    second = life.desk.post(life.url("repair", "/v1/repair/applications"), json=application)
    assert second.status_code == 201 and second.json()["scope"] == "publicity", second.text
    approved = life.desk.post(  # a regulator may decide too
        life.url("repair", f"/v1/repair/applications/{second.json()['application_id']}/decision"),
        json={"decision": "approved", "reason": "publicity no longer needed"})
    assert approved.status_code == 200, approved.text
    answer = life.wait(lambda: (lambda a: a if a["record"] == "no_active_restriction" else None)(
        life.status()), "every sector open again")
    assert answer["record"] == "no_active_restriction"
    assert all(e["may_pass"] for e in answer["sectors"].values())
    public = life.public()
    assert public["penalties"] == [] and public["listings"] == []
    life.wait(lambda: {x["measure"]["id"] for x in life.notices("credit-dept")
                       if x["kind"] == "lifted"} >= PENALTY, "the penalty's measures lifted")
    assert all("publicity ended" in n["reason"] for n in life.notices("credit-dept")
               if n["kind"] == "lifted" and n["measure"]["id"] in PENALTY)
    # Nothing comes back at any later date.
    assert life.active(as_of=(end - DAY).isoformat()) == set()
    assert life.public(as_of=(end - DAY).isoformat())["penalties"] == []

    # -- 5. automatic end: a small fine's three months of publicity ---------------------------
    small = violation(uscc=code, entity_name=name, category="product_quality", severity="general",
                      occurred_at=ago(90), decided_at=ago(80), listing=None,
                      penalties=[{"type": "fine", "amount": "5000.00"}])
    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as publisher:
        publisher.publish(small, correlation_id="life-5")
    public = life.wait(lambda: (lambda p: p if p["penalties"] else None)(life.public()),
                       "the small fine in the public record")
    assert [p["document_number"] for p in public["penalties"]] == [small["document_number"]]
    # Order 45 art. 13: from the publication day; not reported, so the art. 9 deadline (20
    # working days after the decision) is assumed
    published = Periods.shipped().publication_deadline(datetime.fromisoformat(small["decided_at"]))
    small_end = months_after(published, 3)
    assert datetime.fromisoformat(public["penalties"][0]["published_from"]) == published
    assert datetime.fromisoformat(public["penalties"][0]["published_until"]) == small_end
    assert life.public(as_of=(small_end - DAY).isoformat())["penalties"]
    assert life.public(as_of=small_end.isoformat())["penalties"] == []
    assert life.public(as_of=(small_end + DAY).isoformat())["penalties"] == []
    assert life.status()["may_pass"] is True  # a general product-quality fine restricts nothing
    assert not [n for n in life.notices("credit-dept") if n["merchant"]["uscc"] == code
                and n["kind"] == "imposed" and n["restriction"]["restriction_id"].startswith(
                    f"{small['agency_code']}/{small['document_number']}")]

    # -- scores after repair (need the scoring service's reaction to RecordRepaired) ----------
    assert scores["serious_list_repaired"] > scores["listed"], scores
    final = life.wait(lambda: (lambda s: s if s["risk_class"] == "A" else None)(life.score()),
                      "class A once the repaired record stops deducting (scoring branch)")
    assert final["score"] >= 90
