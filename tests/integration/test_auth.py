"""Credentials, roles and rate limits on HTTP and on AMQP intake, against the real store."""
import pytest
from nameko.testing.services import entrypoint_waiter

from shared.agency_client import AgencyPublisher
from shared.auth import KeyStore
from shared.deadletters import list_dead_letters
from services.violations.service import ViolationsService
from tests.factories import violation
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def violations(container_factory, config):
    container = container_factory(ViolationsService, config)
    container.start()
    return container


def test_no_credential_is_401_naming_the_header(violations, make_session):
    response = make_session(None).post("/v1/violations", json=violation())
    assert response.status_code == 401
    assert "Authorization" in response.json()["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer lc_nosuchkey.secret", "Bearer nonsense",
                                    "Basic dXNlcjpwYXNz", "Bearer "])
def test_unknown_or_malformed_credentials_are_401(violations, make_session, header):
    session = make_session(None)
    session.headers["Authorization"] = header
    response = session.post("/v1/violations", json=violation())
    assert response.status_code == 401
    assert response.json()["error"]


def test_a_right_key_id_with_a_wrong_secret_is_401(violations, make_session, keys):
    key_id = keys("agency", "FJAMR").split(".")[0]
    session = make_session(None)
    session.headers["Authorization"] = f"Bearer {key_id}.not-the-secret"
    assert session.post("/v1/violations", json=violation()).status_code == 401


def test_wrong_role_is_403_naming_the_allowed_roles(violations, make_session):
    response = make_session("gatekeeper", "bank").post("/v1/violations", json=violation())
    assert response.status_code == 403
    assert "agency" in response.json()["error"]


def test_health_needs_no_credential(violations, make_session):
    assert make_session(None).get("/health").status_code == 200


def test_an_agency_may_not_record_for_another_agency(violations, make_session, db):
    response = make_session("agency", "SAMR").post("/v1/violations", json=violation())
    assert response.status_code == 422 or response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert errors[0]["field"] == "agency_code" and "SAMR" in errors[0]["problem"]
    assert db("violations").violations.count_documents({}) == 0


def test_an_agency_records_within_its_own_jurisdiction(violations, make_session):
    assert make_session("agency", "FJAMR").post("/v1/violations",
                                                json=violation()).status_code == 201


def test_rate_limit_answers_429_with_retry_after(violations, make_session):
    session = make_session("regulator", "slow", rate=0.01)  # one now, the next in 100 s
    statuses = [session.get("/v1/rejections").status_code for _ in range(4)]
    assert statuses == [200, 429, 429, 429]
    other = make_session("regulator", "other", rate=0.01)  # limits are per credential
    assert other.get("/v1/rejections").status_code == 200
    limited = session.get("/v1/rejections")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 50
    assert "rate limit" in limited.json()["error"]


def test_keys_are_stored_hashed_and_revocation_takes_effect(mongo_client, db_prefix, config,
                                                            container_factory, make_session):
    store = KeyStore(mongo_client[f"{db_prefix}_auth"])
    key = store.create("regulator", "audit")
    key_id, secret = key[3:].split(".")
    doc = mongo_client[f"{db_prefix}_auth"].keys.find_one({"_id": key_id})
    assert secret not in str(doc) and doc["hash"] and doc["scheme"] == "hmac-sha256"
    container_factory(ViolationsService, {**config, "AUTH_CACHE_SECONDS": 0}).start()
    session = make_session(None)
    session.headers["Authorization"] = f"Bearer {key}"
    assert session.get("/v1/rejections").status_code == 200
    assert store.revoke(key_id)
    assert session.get("/v1/rejections").status_code == 401


def test_amqp_intake_without_a_credential_is_dead_lettered_unhandled(violations, config, db):
    with AgencyPublisher(config["AMQP_URI"]) as anonymous:
        anonymous.publish(violation())
    letters = wait_for(lambda: list_dead_letters(config["AMQP_URI"], "dlq.violations.intake"),
                       message="the refused message in the DLQ")
    assert "credential" in letters[0].reason
    assert db("violations").violations.count_documents({}) == 0


def test_amqp_intake_with_a_gatekeeper_key_is_refused(violations, config, keys, db):
    with AgencyPublisher(config["AMQP_URI"], keys("gatekeeper", "bank")) as wrong:
        wrong.publish(violation())
    letters = wait_for(lambda: list_dead_letters(config["AMQP_URI"], "dlq.violations.intake"),
                       message="the refused message in the DLQ")
    assert "may not publish" in letters[0].reason
    assert "authorization" not in {k.lower() for k in letters[0].headers}


def test_amqp_intake_with_an_agency_key_records(violations, config, keys, db):
    with AgencyPublisher(config["AMQP_URI"], keys("agency", "FJAMR")) as agency:
        with entrypoint_waiter(violations, "on_intake", timeout=20) as result:
            agency.publish(violation())
    assert result.get()["status"] == "recorded"


def test_a_forged_principal_header_is_ignored(violations, config, keys, db):
    """nameko copies ``nameko.*`` headers into context data: a sender must not name itself."""
    import json
    import pika
    from shared.agency_client import _pika_uri
    connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(config["AMQP_URI"])))
    channel = connection.channel()
    channel.confirm_delivery()  # the broker has it before the connection closes
    channel.basic_publish("lianchen.intake", "violation.record",
                          json.dumps(violation()).encode(), pika.BasicProperties(
                              content_type="application/json",
                              headers={"nameko.principal": "administrator:root:x"}))
    connection.close()
    letters = wait_for(lambda: list_dead_letters(config["AMQP_URI"], "dlq.violations.intake"),
                       message="the forged message refused")
    assert "credential" in letters[0].reason
    assert db("violations").violations.count_documents({}) == 0


def test_unknown_paths_and_methods_are_json_refusals(violations, make_session):
    session = make_session("agency", "FJAMR")
    missing = session.get("/v1/violations//")
    assert missing.status_code == 404 and "Not Found" in missing.json()["error"]
    wrong = session.delete("/v1/violations")
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]
    assert wrong.json()["error"]


def test_a_wrong_secret_costs_no_slow_hash_and_old_pbkdf2_keys_still_work(mongo_client,
                                                                           db_prefix):
    """PBKDF2 (~40 ms) ran for every wrong secret of a known key id, before any rate limit,
    blocking the whole eventlet process. Keys are 192 random bits: HMAC under a server secret;
    a key stored with PBKDF2 still verifies and is rehashed at once."""
    import os
    import time
    from shared.auth import AuthError, PBKDF2_ITERATIONS, hash_secret
    db = mongo_client[f"{db_prefix}_auth"]
    store = KeyStore(db, cache_seconds=0)
    key_id = store.create("agency", "FJAMR")[3:].split(".")[0]
    started = time.perf_counter()
    for _ in range(20):
        with pytest.raises(AuthError):
            store.verify(f"lc_{key_id}.wrong-secret")
    per_try = (time.perf_counter() - started) / 20
    assert per_try < 0.015, f"{per_try * 1000:.1f} ms per wrong secret"
    # a key created before HMAC hashing
    salt = os.urandom(16)
    db.keys.insert_one({"_id": "legacy01", "role": "regulator", "subject": "audit",
                        "rate": 5.0, "salt": salt.hex(), "iterations": PBKDF2_ITERATIONS,
                        "hash": hash_secret("old-secret", salt), "revoked_at": None})
    assert store.verify("lc_legacy01.old-secret").role == "regulator"
    migrated = db.keys.find_one({"_id": "legacy01"})
    assert migrated["scheme"] == "hmac-sha256" and "salt" not in migrated
    assert store.verify("lc_legacy01.old-secret").subject == "audit"  # after the rehash
    with pytest.raises(AuthError):
        store.verify("lc_legacy01.wrong")
