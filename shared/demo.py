"""The demo `make run` ends with: one violation, restricting the entity where the law allows.

Registers a merchant on a platform, subscribes the platform to notices, publishes a food-safety
decision that revokes the food licence and lists the merchant on the serious violation list
*as an agency would* (plain pika, publisher confirms), then shows step by step what each part
of the system now says: prohibitions where a law gives one (食品安全法 art. 135: no food licence
for 5 years; 政府采购法 art. 22(5) with 实施条例 art. 19: no procurement for 3 years; Order 44
art. 15(四): no SAMR honours), and the other measures of Order 44 art. 15 as what they are
(considerations, stricter review, supervision, information). The decision names the legal
representative and the directly responsible manager: a registration office then asks whether
they may take positions elsewhere (``POST /v1/persons:status``, the registrar role), and the
registry flags an appointment of the barred legal representative at another enterprise.
"""
from __future__ import annotations

import os
import random
import sys
import time
import uuid

import requests

from rules import uscc
from shared.agency_client import AgencyPublisher

AMQP_URI = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
# The agency publishes as its own broker user (writes lianchen.intake only) where there is one
# (`make run`: shared.broker_admin users --agency SXAMR); else as AMQP_URI's user.
AGENCY_AMQP_URI = os.environ.get("AGENCY_AMQP_URI") or AMQP_URI
PORTS = {"registry": 8001, "violations": 8002, "scoring": 8003, "restrictions": 8004,
         "notifications": 8005, "repair": 8006}


def sessions() -> dict[str, requests.Session]:
    """Bootstrap: the demo creates its own keys on the store, as ``lianchen keys create``
    does (one per role it plays), and keeps the administrator's for the curl hints."""
    from shared.auth import KeyStore
    from shared.mongo import connect
    store = KeyStore.from_config({"MONGO_URI": os.environ.get("MONGO_URI"),
                                  "DB_PREFIX": os.environ.get("DB_PREFIX")},
                                 connect(os.environ.get("MONGO_URI")))
    made = {}
    for role, subject in (("regulator", "demo-samr"), ("platform", "demo-mall"),
                          ("gatekeeper", "demo-bank"), ("agency", "SXAMR"),
                          ("registrar", "demo-registration"), ("administrator", "demo-admin")):
        session = requests.Session()
        session.key = store.create(role, subject, note="make run demo")
        session.headers["Authorization"] = f"Bearer {session.key}"
        made[role] = session
    return made


def url(service: str, path: str) -> str:
    """``<SERVICE>_URL`` (compose) or the local port."""
    base = os.environ.get(f"{service.upper()}_URL", f"http://127.0.0.1:{PORTS[service]}")
    return f"{base.rstrip('/')}{path}"


def step(n: int, text: str) -> None:
    print(f"\n[{n}] {text}")


def main() -> int:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    code = uscc.make("91140100" + "".join(random.choice(alphabet) for _ in range(9)))
    document = f"晋市监罚〔2026〕{random.randint(1000, 9999)}号"
    name = "太原示例餐饮管理有限公司 (demo)"
    try:
        s = sessions()
    except Exception as exc:
        print(f"error: the key store is unreachable ({exc}). Try: make run", file=sys.stderr)
        return 1
    try:
        step(1, f"Registry: register merchant {code} and its shop on platform 'demo-mall'")
        s["regulator"].put(url("registry", f"/v1/registry/entities/{code}"), timeout=5,
                     json={"name": name, "industry": "catering"}).raise_for_status()
        s["platform"].post(url("registry", f"/v1/registry/entities/{code}/memberships"), timeout=5,
                      json={"platform_id": "demo-mall", "shop_id": "shop-8848"}).raise_for_status()
        s["platform"].post(url("notifications", "/v1/subscriptions"), timeout=5, json={
            "subscriber_id": "demo-mall", "kind": "platform", "platform_id": "demo-mall"},
                      ).raise_for_status()
        print("    done; platform demo-mall subscribed to notices")
    except requests.RequestException as exc:
        print(f"error: a service did not answer ({exc}). Are they running? Try: make run",
              file=sys.stderr)
        return 1

    record = {
        "agency_code": "SXAMR-140100", "document_number": document, "uscc": code,
        "entity_name": name, "category": "food_safety", "severity": "serious",
        "penalties": [{"type": "fine", "amount": "200000.00"}, {"type": "confiscation",
                                                                "amount": "35000.00"},
                      {"type": "licence_revocation"}],
        "legal_basis": {"law": "Food Safety Law (食品安全法)", "article": "124"},
        "occurred_at": "2026-09-15T11:00:00+08:00", "decided_at": "2026-11-02T10:00:00+08:00",
        "first_offence": False, "corrected": False,
        "listing": {"list": "serious_violation", "listed_at": "2026-11-03T09:00:00+08:00"},
        "persons": [
            {"role": "legal_representative", "name": "王建国", "id_number": DEMO_PERSONS[0]},
            {"role": "responsible_manager", "name": "李秀英", "id_number": DEMO_PERSONS[1]}],
    }
    correlation_id = uuid.uuid4().hex
    step(2, f"Agency SXAMR publishes decision {document} over AMQP (pika, publisher confirms)")
    with AgencyPublisher(AGENCY_AMQP_URI, s["agency"].key) as agency:
        message_id = agency.publish(record, correlation_id=correlation_id)
    print(f"    confirmed by the broker: message_id={message_id} correlation_id={correlation_id}")

    step(3, "Gate-keeping: may this entity pass? (restrictions service, computed now)")
    expected = _expected(record)
    deadline, answer = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        answer = s["gatekeeper"].get(url("restrictions", f"/v1/entities/{code}/status"),
                                     timeout=5).json()
        shown = {m["measure_id"] for e in answer.get("sectors", {}).values()
                 for m in e["measures"]}
        if shown >= expected:
            break
        time.sleep(0.2)
    for sector, entry in answer["sectors"].items():
        verdict = "MAY PASS" if entry["may_pass"] else "PROHIBITED"
        print(f"    {sector:<14} {verdict}  ({entry['reason']})")
        for m in entry["measures"]:
            ends = m["ends_at"][:10] if m["ends_at"] else "until cured"
            print(f"        - {m['measure_id']} [{m['effect']}] {m['action']}")
            for basis in m["bases"]:
                print(f"          basis: {basis['document']} {basis['article']}"
                      f"{basis.get('item') or ''}: 「{basis['quote']}」")
            print(f"          by: {m['department']} | until {ends}")
    print(f"    answer_id={answer['answer_id']} (audited; GET /v1/answers/{answer['answer_id']})")

    step(4, "Scoring: credit score and risk class (regulator view)")
    score = s["regulator"].get(url("scoring", f"/v1/scores/{code}"), timeout=5).json()
    print(f"    score {score.get('score')} class {score.get('risk_class')}")

    step(5, "Notifications: the platform is informed (no rule held obliges it to clear the shop)")
    expected = len(answer["sectors"].get("platforms", {}).get("measures", []))
    deadline, notices = time.monotonic() + 15, []
    while time.monotonic() < deadline and len(notices) < max(expected, 1):
        notices = [n for n in s["platform"].get(url("notifications", "/v1/notices"), timeout=5,
                                           params={"subscriber": "demo-mall"}).json()["notices"]
                   if n["uscc"] == code]
        time.sleep(0.2)
    for n in notices:
        print(f"    {n['kind']}: {n['measure']['id']} [{n['measure'].get('effect')}] "
              f"{n['measure']['action']} (shop {n['merchant']['shop_id']})")

    step(6, "Registration office: may the persons of the decision take positions elsewhere?")
    barred = _persons_step(s, code)

    restricted = [s for s, e in answer["sectors"].items() if not e["may_pass"]]
    others = [s for s, e in answer["sectors"].items() if e["may_pass"] and e["measures"]]
    print(f"\nOne violation: prohibited in {len(restricted)} of {len(answer['sectors'])} sectors "
          f"({', '.join(restricted)}); measures without prohibition in {', '.join(others)}.")
    print("Try next (an administrator's key the demo created; `lianchen keys create` makes more):")
    print(f"  export KEY={s['administrator'].key}")
    print(f"  curl -s -H \"Authorization: Bearer $KEY\" {url('restrictions', f'/v1/entities/{code}/status')}")
    print(f"  curl -s -H \"Authorization: Bearer $KEY\" '{url('restrictions', f'/v1/entities/{code}/status')}?sector=credit&as_of=2026-11-01T00:00:00%2B08:00'")
    print(f"  curl -s -H \"Authorization: Bearer $KEY\" {url('registry', f'/v1/registry/entities/{code}')}")
    print(f"  curl -s -H \"Authorization: Bearer $KEY\" {url('scoring', f'/v1/scores/{code}')}")
    print(f"  curl -s -H \"Authorization: Bearer $KEY\" '{url('notifications', '/v1/notices')}?subscriber=demo-mall'")
    print(f"  curl -s -H \"Authorization: Bearer $KEY\" {url('restrictions', '/v1/changes')}")
    print(f"  curl -s -X POST -H \"Authorization: Bearer $KEY\" {url('restrictions', '/v1/persons:status')} "
          f"-d '{{\"persons\": [{{\"id_number\": \"{DEMO_PERSONS[0]}\"}}], \"purpose\": \"demo check\"}}'")
    wanted = {"market_access", "procurement", "honours"}
    return 0 if set(restricted) == wanted and notices and barred else 1


# Demo identity numbers (valid check characters, region 110101, not real persons).
DEMO_PERSONS = ("110101198003150017", "110101198507200022")


def _persons_step(s, code: str) -> bool:
    """The registrar's check of the decision's two persons, then the registration of the
    legal representative at another enterprise (recorded, flagged). True when both show."""
    ask = {"persons": [{"id_number": n} for n in DEMO_PERSONS],
           "purpose": "demo: 设立登记 of a new enterprise"}
    deadline, answer = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        answer = s["registrar"].post(url("restrictions", "/v1/persons:status"), json=ask,
                                     timeout=30).json()
        results = answer.get("results") or []
        # each measure is imposed by its own write: wait for the two that show the rules
        if len(results) == 2 and not results[0]["positions"]["legal_representative"][
                "may_take"] and not results[1]["positions"]["food_management"]["may_take"]:
            break
        time.sleep(0.2)
    for result in answer.get("results", []):
        print(f"    person {result['id_masked']} ({result['person_id'][:15]}...):")
        for position, entry in result["positions"].items():
            if entry["may_take"]:
                continue
            for m in entry["measures"]:
                basis = m["bases"][0]
                print(f"        may not be {position}: {m['measure_id']} until "
                      f"{m['ends_at'][:10]} ({basis['document']} {basis['article']}), "
                      f"caused by {m['cause']['uscc']}")
        free = [p for p, e in result["positions"].items() if e["may_take"]]
        print(f"        may be: {', '.join(free)}")
    print(f"    answer_id={answer.get('answer_id')} (audited with its purpose)")
    deadline, flags = time.monotonic() + 15, []
    while not flags and time.monotonic() < deadline:
        time.sleep(0.5)  # the registry hears of the person measure by event
        other = uscc.make("91140100" + "".join(random.choice("0123456789ABCDEFGHJKLMNPQRTUWXY")
                                               for _ in range(9)))
        registered = s["registrar"].put(url("registry", f"/v1/registry/entities/{other}"), json={
            "name": "太原另一家示例有限公司 (demo)", "legal_representative": {
                "name": "王建国", "id_number": DEMO_PERSONS[0]}}, timeout=30)
        flags = registered.json().get("barred_appointments", []) if registered.ok else []
    for flag in flags:
        print(f"    registry: {flag['role']} of {other} recorded and FLAGGED: "
              f"{', '.join(f['measure_id'] for f in flag['flags'])} (BarredAppointmentRecorded)")
    return bool(answer.get("results")) and bool(flags)


def _expected(record: dict) -> set[str]:
    """The entity measures the catalog in force decides for this record."""
    from contracts.violation import ViolationSchema
    from rules import loader
    facts = {k: v for k, v in record.items() if k != "persons"}  # no identity key here
    decision = loader.load().measures.decide(ViolationSchema().load(facts))
    return {m["measure"].id for m in decision.entity_measures}


if __name__ == "__main__":
    sys.exit(main())
