"""Notices verify with the maintained Standard Webhooks library, before and after a rotation."""
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notifications import signing
from services.notifications.delivery import headers_for, signing_secrets

NOTICE = {"_id": "ntc_0123456789abcdef", "kind": "imposed", "correlation_id": "c" * 32,
          "body": json.dumps({"notice_id": "ntc_0123456789abcdef", "kind": "imposed"})}


def test_generated_secret_is_whsec_with_256_bits():
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert signing.generate_secret() != secret


def test_the_library_verifies_a_generated_secret_and_refuses_another():
    secret = signing.generate_secret()
    headers = headers_for(NOTICE, [secret], attempt=1)
    assert headers["webhook-id"] == NOTICE["_id"]
    assert Webhook(secret).verify(NOTICE["body"], headers)["notice_id"] == NOTICE["_id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(NOTICE["body"], headers)
    tampered = NOTICE["body"].replace("imposed", "lifted")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    # the form before is still sent, and verifies with the same secret
    assert signing.verify(secret, NOTICE["body"].encode(), headers["X-Lianchen-Signature"])


def test_a_secret_the_subscriber_chose_verifies_as_its_base64():
    chosen = "a subscriber chose this secret"
    headers = headers_for(NOTICE, chosen, attempt=2)
    key = base64.b64encode(chosen.encode()).decode()
    assert Webhook(key).verify(NOTICE["body"], headers)
    assert signing.verify(chosen, NOTICE["body"].encode(), headers["X-Lianchen-Signature"])


def test_during_a_rotation_both_secrets_sign_and_after_it_only_the_new_one():
    old, new = signing.generate_secret(), signing.generate_secret()
    now = datetime.now(timezone.utc)
    rotating = {"webhook_secret": new, "previous_webhook_secret": old,
                "previous_secret_expires_at": now + timedelta(hours=1)}
    headers = headers_for(NOTICE, signing_secrets(rotating, now), attempt=1)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(NOTICE["body"], headers)
    assert Webhook(new).verify(NOTICE["body"], headers)
    later = now + timedelta(hours=2)
    assert signing_secrets(rotating, later) == [new]
    after = headers_for(NOTICE, signing_secrets(rotating, later), attempt=1)
    assert Webhook(new).verify(NOTICE["body"], after)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(NOTICE["body"], after)
    # naive datetimes, as the store gives them, are UTC
    naive = {**rotating, "previous_secret_expires_at": (now + timedelta(hours=1)).replace(
        tzinfo=None)}
    assert signing_secrets(naive, now) == [new, old]


def test_no_secret_no_signature():
    headers = headers_for(NOTICE, signing_secrets({}), attempt=1)
    assert "webhook-signature" not in headers and "X-Lianchen-Signature" not in headers
