"""MongoDB access as a nameko dependency.

The client is opened in ``setup`` and closed in ``stop``; workers get the service's database.
pymongo's client is thread- (and greenthread-) safe and pools connections, so one client per
container is right. Code here must run unchanged on MongoDB and FerretDB 1.x: no multi-document
transactions, no change streams; single-document atomicity with deterministic keys and upserts.
"""
from __future__ import annotations

import pymongo
from nameko.extensions import DependencyProvider

DEFAULT_URI = "mongodb://127.0.0.1:27017/"


def database_name(config: dict, service: str) -> str:
    return f"{config.get('DB_PREFIX') or 'lianchen'}_{service}"


def connect(uri: str | None = None, **kwargs) -> pymongo.MongoClient:
    return pymongo.MongoClient(
        uri or DEFAULT_URI,
        serverSelectionTimeoutMS=kwargs.pop("serverSelectionTimeoutMS", 5000),
        tz_aware=True,
        **kwargs,
    )


class Mongo(DependencyProvider):
    """Injects the ``pymongo.database.Database`` owned by this service.

    ``indexes`` is a callable ``(db) -> None`` run at start-up: it creates the service's
    indexes (idempotent) and may refuse to start by raising.
    """

    def __init__(self, service: str, indexes=None):
        self.service = service
        self.indexes = indexes
        self.client = None
        self.db = None

    def setup(self):
        config = self.container.config
        self.client = connect(config.get("MONGO_URI"))
        self.db = self.client[database_name(config, self.service)]

    def start(self):
        if self.indexes is not None:
            self.indexes(self.db)

    def stop(self):
        if self.client is not None:
            self.client.close()
            self.client = None

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.db
