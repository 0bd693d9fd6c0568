"""Server-generated signing secrets and their rotation, verified by a receiver that uses only
the Standard Webhooks library (the real broker, store and notifications service)."""
from __future__ import annotations

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.factories import make_uscc
from tests.integration.conftest import wait_for
from tests.integration.test_notifications import db_prefix, restriction, world  # noqa: F401

pytestmark = pytest.mark.integration


def _subscribe_without_secret(world, platform: str) -> str:
    path = f"/hooks/{platform}"
    response = world.session("platform", platform).post("/v1/subscriptions", json={
        "kind": "platform", "platform_id": platform, "webhook_url": world.receiver.url(path)})
    assert response.status_code == 201, response.text
    secret = response.json()["webhook_secret"]
    assert secret.startswith("whsec_")
    world.receiver.secrets[path] = secret  # the test receiver also checks the other header
    shown = world.session("platform", platform).get(f"/v1/subscriptions/{platform}").json()
    assert "webhook_secret" not in shown and shown["has_webhook_secret"] is True
    return secret


def _delivered(world, platform: str, count: int):
    wait_for(lambda: len(world.receiver.unique(f"/hooks/{platform}")) >= count,
             message=f"{count} notices at {platform}")
    return list(world.receiver.unique(f"/hooks/{platform}").values())


def test_generated_secret_then_rotation_verified_by_the_library_alone(world):
    code = make_uscc()
    world.member(code, "mall-w")
    first = _subscribe_without_secret(world, "mall-w")
    world.impose(restriction(code))
    [notice] = _delivered(world, "mall-w", 1)
    assert Webhook(first).verify(notice.body, notice.headers)["notice_id"] == notice.notice_id
    assert notice.headers["webhook-id"] == notice.notice_id

    rotated = world.session("platform", "mall-w").post(
        "/v1/subscriptions/mall-w/secret:rotate", json={"previous_valid_hours": 1})
    assert rotated.status_code == 200, rotated.text
    answer = rotated.json()
    second = answer["webhook_secret"]
    assert second.startswith("whsec_") and second != first and answer["previous_secret_expires_at"]
    world.receiver.secrets["/hooks/mall-w"] = second
    world.impose(restriction(code, measure="SL-PLAT"))
    notices = _delivered(world, "mall-w", 2)
    latest = next(n for n in notices if n.notice_id != notice.notice_id)
    assert len(latest.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(second).verify(latest.body, latest.headers)
    assert Webhook(first).verify(latest.body, latest.headers)  # the overlap: both sign

    rotation = world.db.secret_rotations.find_one({"_id": answer["rotation_id"]})
    assert rotation["subscriber_id"] == "mall-w" and rotation["by"] == "platform:mall-w"
    assert first not in str(rotation) and second not in str(rotation)


def test_rotation_without_overlap_stops_the_old_secret_at_once(world):
    code = make_uscc()
    world.member(code, "mall-x")
    first = _subscribe_without_secret(world, "mall-x")
    answer = world.session("platform", "mall-x").post(
        "/v1/subscriptions/mall-x/secret:rotate", json={"previous_valid_hours": 0}).json()
    assert answer["previous_secret_expires_at"] is None
    world.receiver.secrets["/hooks/mall-x"] = answer["webhook_secret"]
    world.impose(restriction(code))
    [notice] = _delivered(world, "mall-x", 1)
    assert Webhook(answer["webhook_secret"]).verify(notice.body, notice.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(first).verify(notice.body, notice.headers)


def test_rotation_is_refused_to_others_and_for_pull_subscribers(world):
    _subscribe_without_secret(world, "mall-y")
    other = world.session("platform", "mall-z").post("/v1/subscriptions/mall-y/secret:rotate",
                                                     json={})
    assert other.status_code == 403
    pull = world.session("platform", "mall-z").post("/v1/subscriptions", json={
        "kind": "platform", "platform_id": "mall-z"})
    assert pull.status_code == 201 and "webhook_secret" not in pull.json()
    refused = world.session("platform", "mall-z").post("/v1/subscriptions/mall-z/secret:rotate",
                                                       json={})
    assert refused.status_code == 409 and "pulls" in refused.json()["detail"]
    bad = world.session("platform", "mall-y").post("/v1/subscriptions/mall-y/secret:rotate",
                                                   json={"previous_valid_hours": 500})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "previous_valid_hours"
    missing = world.session("regulator", "samr").post("/v1/subscriptions/nobody/secret:rotate",
                                                      json={})
    assert missing.status_code == 404
