"""Baseline: the raw broker and store on this machine, measured first in every `make bench`.

Later benchmarks compare themselves with these figures from the same run (ratios, not times).
"""
from __future__ import annotations

import os
import uuid

from common import rate, report, timed

import pika
import pymongo

from shared import broker_admin
from shared.agency_client import _pika_uri

N = int(os.environ.get("BENCH_N", "3000"))
AMQP_URI = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")


def raw_publish(channel, queue: str, n: int, confirms: bool) -> None:
    body = b'{"k": "' + b"x" * 600 + b'"}'  # about the size of a violation record
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    for _ in range(n):
        channel.basic_publish("", queue, body, props)


def broker_figures() -> list:
    vhost = f"bench{uuid.uuid4().hex[:6]}"
    broker_admin.create_vhost(vhost)
    try:
        uri = AMQP_URI.rstrip("/") + "/" + vhost
        conn = pika.BlockingConnection(pika.URLParameters(_pika_uri(uri)))
        plain = conn.channel()
        plain.queue_declare("bench.plain", durable=True)
        confirmed = conn.channel()
        confirmed.confirm_delivery()
        confirmed.queue_declare("bench.confirmed", durable=True)
        t_plain, _ = timed(raw_publish, plain, "bench.plain", N, False)
        t_conf, _ = timed(raw_publish, confirmed, "bench.confirmed", N, True)
        conn.close()
    finally:
        broker_admin.delete_vhost(vhost)
    return [("raw pika publish, durable queue, no confirms", rate(N, t_plain), "msg/s"),
            ("raw pika publish, durable queue, confirms", rate(N, t_conf), "msg/s")]


def store_figures() -> list:
    client = pymongo.MongoClient(MONGO_URI)
    db = client[f"bench{uuid.uuid4().hex[:6]}"]
    try:
        docs = [{"_id": f"d{i}", "payload": "x" * 600} for i in range(N)]
        t_insert, _ = timed(lambda: [db.c.insert_one(d) for d in docs])
        t_find, _ = timed(lambda: [db.c.find_one({"_id": f"d{i}"}) for i in range(N)])
        t_update, _ = timed(lambda: [db.c.update_one({"_id": f"d{i}"}, {"$set": {"v": 1}})
                                     for i in range(N)])
    finally:
        client.drop_database(db.name)
        client.close()
    return [("store insert_one", rate(N, t_insert), "ops/s"),
            ("store find_one by _id", rate(N, t_find), "ops/s"),
            ("store update_one by _id", rate(N, t_update), "ops/s")]


if __name__ == "__main__":
    report(f"broker baseline ({N} messages of ~600 bytes)", broker_figures(),
           baseline="raw pika publish, durable queue, confirms")
    report(f"store baseline ({N} documents)", store_figures(), baseline="store insert_one")
