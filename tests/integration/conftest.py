"""Integration fixtures: the real RabbitMQ (a fresh vhost per test, from nameko's pytest plugin)
and the real MongoDB-compatible store (a fresh database prefix per test)."""
import os
import uuid

import pika
import pymongo
import pytest

from shared.agency_client import _pika_uri
from shared.auth import KeyStore
from tests.system import wait_for as system_wait_for

MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
DATABASES = ("registry", "violations", "scoring", "restrictions", "notifications", "repair",
             "auth")


@pytest.fixture
def mongo_client():
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True, serverSelectionTimeoutMS=5000)
    yield client
    client.close()


@pytest.fixture
def db_prefix(mongo_client):
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    # By name: listing databases is slow on FerretDB with many databases (it has hung there).
    for name in DATABASES:
        mongo_client.drop_database(f"{prefix}_{name}")


@pytest.fixture
def config(rabbit_config, web_config, db_prefix):
    return {**rabbit_config, **web_config, "MONGO_URI": MONGO_URI, "DB_PREFIX": db_prefix,
            "RETRY_BASE_DELAY_MS": 20, "RETRY_MAX_ATTEMPTS": 3, "LOG_LEVEL": "WARNING",
            "MAX_WORKERS": 10}


@pytest.fixture
def db(mongo_client, db_prefix):
    return lambda service: mongo_client[f"{db_prefix}_{service}"]


def wait_for(predicate, timeout=15.0, interval=0.05, message="condition"):
    return system_wait_for(predicate, timeout, interval, message)


class QueueReader:
    """Reads messages from a queue with plain pika (what an operator's tool would see)."""

    def __init__(self, amqp_uri):
        self.connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(amqp_uri)))
        self.channel = self.connection.channel()

    def get_all(self, queue, expect=1, timeout=15.0):
        got = []

        def poll():
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is not None:
                got.append((properties, body))
            return len(got) >= expect

        wait_for(poll, timeout, message=f"{expect} message(s) on {queue}")
        return got

    def close(self):
        self.connection.close()


@pytest.fixture
def queue_reader(rabbit_config):
    reader = QueueReader(rabbit_config["AMQP_URI"])
    yield reader
    reader.close()


@pytest.fixture
def keys(mongo_client, db_prefix):
    """Creates credentials in the test's own key store: ``keys("agency", "SAMR")``."""
    store = KeyStore(mongo_client[f"{db_prefix}_auth"])
    return lambda role="administrator", subject="ops", rate=10_000: store.create(
        role, subject, rate=rate)


@pytest.fixture
def make_session(web_config_port, keys):
    """``make_session(role, subject)``: a session on the test's web port with that credential
    (``role=None``: no credential). nameko's own fixture imports werkzeug.urls.url_join, which
    werkzeug 3 removed."""
    from requests import Session

    class WebSession(Session):
        def request(self, method, url, *args, **kwargs):
            return super().request(method, f"http://127.0.0.1:{web_config_port}{url}",
                                   *args, **kwargs)

    sessions = []

    def make(role="administrator", subject="ops", rate=10_000):
        session = WebSession()
        if role is not None:
            session.headers["Authorization"] = f"Bearer {keys(role, subject, rate)}"
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def web_session(make_session):
    """An administrator's session."""
    return make_session()


class LeastPrivilegeBroker:
    """A fresh vhost with the topology and every least-privilege user of ``shared.bususers``
    (namespace = the vhost's name, so that parallel runs on one broker never share a user)."""

    def __init__(self, agencies=("FJAMR", "SAMR"), platforms=("mall",)):
        from shared import broker_admin
        self._admin = broker_admin
        base = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
        self.vhost = f"lp{uuid.uuid4().hex[:10]}"
        self.namespace = self.vhost
        self.admin_uri = f"{base.split('://')[0]}://{base.split('://')[1].split('/')[0]}/{self.vhost}"
        broker_admin.create_vhost(self.vhost)
        self.passwords = broker_admin.create_users(self.vhost, self.namespace,
                                                   agencies=agencies, platforms=platforms)

    def uri(self, user: str) -> str:
        """The vhost's AMQP URI as ``user`` (full name, or a service's name)."""
        if user not in self.passwords:
            user = f"{self.namespace}.{user}"
        return self._admin.with_user(self.admin_uri, user, self.passwords[user])

    def close(self):
        self._admin.delete_vhost(self.vhost)
        self._admin.delete_users(self.namespace)


@pytest.fixture
def least_privilege():
    broker = LeastPrivilegeBroker()
    yield broker
    broker.close()
