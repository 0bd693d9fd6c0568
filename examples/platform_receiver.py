"""A platform's notice receiver (copy and adapt): verifies, applies once, feeds back.

    pip install standardwebhooks
    LIANCHEN_KEY=lc_... LIANCHEN_WEBHOOK_SECRET=whsec_... \\
        python examples/platform_receiver.py [PORT] [--notifications URL] [--seen FILE]

Subscribe it first (once), as your platform; the answer carries the signing secret the server
generated (``webhook_secret``, ``whsec_...``), shown only then: put it in
LIANCHEN_WEBHOOK_SECRET.

    curl -X POST -H "Authorization: Bearer $LIANCHEN_KEY" $NOTIFICATIONS/v1/subscriptions \\
      -d '{"kind": "platform", "platform_id": "<you>",
           "webhook_url": "https://<your host>/lianchen/notices"}'

Rotate it with ``POST /v1/subscriptions/<you>/secret:rotate``: for 24 hours both secrets sign,
so restart the receiver with the new one within that time and no notice is refused.

What it does with each POST (see docs/notifications.md):

1. verifies the Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
   ``webhook-signature``) with the ``standardwebhooks`` library, which also refuses a
   timestamp more than 5 minutes off (replay window): 401 with the reason. A secret chosen
   by the subscriber before secrets were generated (not ``whsec_``) is given to the library
   as its base64;
2. answers 200 at once; a notice id it has seen before (a retry after a timeout, a
   redelivery) is answered 200 again and not applied twice (``--seen FILE`` keeps the ids
   across restarts);
3. applies the measure in its own queue (here: decides the actions), then posts feedback
   to ``POST /v1/notices/{id}/feedback``; a clearance (here on ``SL-PLAT``) reported as ``cleared``
   tells the merchant's other platforms (互认). Informational notices are acknowledged.

``verify`` below checks the other header, ``X-Lianchen-Signature``, with the standard library
only, for a receiver that cannot install a package. ``GET /`` answers counters (received,
applied, duplicates, refused).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

REPLAY_WINDOW_SECONDS = 300
MAX_BODY = 1_000_000
# What this platform does for each catalog measure (adapt to your own operations). The
# notices platforms get carry effect ``inform``: no rule held obliges a platform to clear or
# suspend a merchant because of a government listing; what it does is its own decision under
# its terms and its own credit evaluation (晋市监发〔2023〕216号 (十一)). This example's terms:
ACTIONS = {
    "SL-PLAT": ["cleared", "shop_closed"],  # serious violation list: it closes the shop
    "AO-PLAT": ["rating_lowered"],  # abnormal operations: it lowers its own rating
}


class InvalidSignature(Exception):
    pass


def verify(secret: str, body: bytes, header: str | None, now: float | None = None,
           window: int = REPLAY_WINDOW_SECONDS) -> int:
    """The verification snippet of docs/notifications.md: returns the signed timestamp."""
    if not header:
        raise InvalidSignature("missing X-Lianchen-Signature")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("malformed X-Lianchen-Signature")
    if abs((time.time() if now is None else now) - timestamp) > window:
        raise InvalidSignature("timestamp outside the replay window")
    expected = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise InvalidSignature("signature does not match the body")
    return timestamp


class Platform:
    """Seen notice ids, the work queue and the counters of one receiver."""

    def __init__(self, secret: str, key: str, notifications_url: str, seen_file: str | None):
        self.secret, self.key = secret, key
        # a whsec_ secret as the server generates it; a chosen one: its UTF-8 bytes
        self.webhook = Webhook(secret if secret.startswith("whsec_")
                               else base64.b64encode(secret.encode("utf-8")).decode())
        self.notifications_url = notifications_url.rstrip("/")
        self.seen_file = seen_file
        self.seen: set[str] = set()
        if seen_file and os.path.exists(seen_file):
            with open(seen_file, encoding="utf-8") as f:
                self.seen = {line.strip() for line in f if line.strip()}
        self.lock = threading.Lock()
        self.work: queue.Queue = queue.Queue()
        self.counters = {"received": 0, "applied": 0, "acknowledged": 0, "duplicates": 0,
                         "refused": 0, "feedback_failed": 0}

    def count(self, name: str) -> None:
        with self.lock:
            self.counters[name] += 1

    def first_time(self, notice_id: str) -> bool:
        """Record the id (durably when --seen is given) before answering 200."""
        with self.lock:
            if notice_id in self.seen:
                return False
            self.seen.add(notice_id)
            if self.seen_file:
                with open(self.seen_file, "a", encoding="utf-8") as f:
                    f.write(notice_id + "\n")
            return True

    def apply(self, notice: dict) -> None:
        """Apply the notice in the platform's own systems, then report what was done."""
        if notice["kind"] == "mutual_recognition":
            feedback = {"status": "acknowledged",
                        "note": f"noted: cleared by {notice['cleared_by']['platform_id']}"}
        else:
            actions = (["restored"] if notice["kind"] == "lifted"
                       else ACTIONS.get(notice["measure"]["id"], ["other"]))
            feedback = {"status": "applied", "actions": actions,
                        "applied_at": datetime.now(timezone.utc).isoformat(),
                        "reference": f"ops-{notice['notice_id'][-8:]}"}
        if self.post_feedback(notice["notice_id"], feedback):
            self.count("applied" if feedback["status"] == "applied" else "acknowledged")
            print(f"{feedback['status']} {notice['notice_id']} {notice['kind']} "
                  f"{notice['measure']['id']} {notice['merchant']['uscc']}", flush=True)

    def post_feedback(self, notice_id: str, feedback: dict, attempts: int = 5) -> bool:
        url = f"{self.notifications_url}/v1/notices/{notice_id}/feedback"
        data = json.dumps(feedback).encode("utf-8")
        for attempt in range(attempts):
            request = urllib.request.Request(url, data=data, method="POST", headers={
                "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10):
                    return True  # 201 recorded, or 200: the same feedback was already there
            except urllib.error.HTTPError as exc:
                if exc.code < 500 and exc.code != 429:
                    print(f"feedback for {notice_id} refused: {exc.code} {exc.read()[:300]!r}",
                          file=sys.stderr, flush=True)
                    break
            except OSError:
                pass
            time.sleep(min(30, 0.5 * 2 ** attempt))
        self.count("feedback_failed")
        return False

    def worker(self) -> None:
        while True:
            notice = self.work.get()
            try:
                self.apply(notice)
            except Exception as exc:  # keep serving; the notice stays unapplied, visibly
                print(f"could not apply {notice.get('notice_id')}: {exc}", file=sys.stderr,
                      flush=True)


def make_handler(platform: Platform):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the sender reuses its connection
        disable_nagle_algorithm = True  # headers and body are separate writes

        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with platform.lock:
                self.answer(200, dict(platform.counters))

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                platform.count("refused")
                return self.answer(413, {"error": "body too large"})
            body = self.rfile.read(length)
            try:
                notice = platform.webhook.verify(body, dict(self.headers.items()))
                if notice.get("notice_id") != self.headers.get("webhook-id"):
                    raise InvalidSignature("webhook-id does not match the body")
            except WebhookVerificationError as exc:
                platform.count("refused")
                return self.answer(401, {"error": f"signature: {exc}"})
            except (InvalidSignature, ValueError) as exc:
                platform.count("refused")
                return self.answer(401 if isinstance(exc, InvalidSignature) else 400,
                                   {"error": str(exc)})
            platform.count("received")
            if not platform.first_time(notice["notice_id"]):
                platform.count("duplicates")
                return self.answer(200, {"duplicate": True})
            platform.work.put(notice)
            self.answer(200, {"accepted": notice["notice_id"]})

    return Handler


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", nargs="?", type=int, default=8090)
    parser.add_argument("--notifications", default=os.environ.get(
        "LIANCHEN_NOTIFICATIONS_URL", "http://127.0.0.1:8005"))
    parser.add_argument("--seen", help="file keeping the notice ids already applied")
    args = parser.parse_args(argv)
    secret, key = os.environ.get("LIANCHEN_WEBHOOK_SECRET"), os.environ.get("LIANCHEN_KEY")
    if not secret or not key:
        print("set LIANCHEN_WEBHOOK_SECRET (as subscribed) and LIANCHEN_KEY (your API key)",
              file=sys.stderr)
        return 2
    platform = Platform(secret, key, args.notifications, args.seen)
    threading.Thread(target=platform.worker, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(platform))
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
