"""The least-privilege scheme without a broker: names, permission regexes, producer seals."""
import importlib
import re

import pytest

from shared import bususers
from shared.bususers import PRODUCER_HEADER, SEAL_HEADER, ProducerCheck

NS = "lianchen"


def uri(user, password="pw"):
    return f"amqp://{user}:{password}@127.0.0.1:5672/"


@pytest.mark.parametrize("service", bususers.SERVICES)
def test_consumes_lists_exactly_the_exchanges_each_service_binds(service):
    """The read permissions follow the service classes' event and broadcast handlers."""
    module = importlib.import_module(f"services.{service}.service")
    classes = [value for value in vars(module).values()
               if isinstance(value, type) and getattr(value, "name", None) == service]
    (service_cls,) = classes
    sources = set()
    for attribute in vars(service_cls).values():
        for entrypoint in getattr(attribute, "nameko_entrypoints", ()) or ():
            source = getattr(entrypoint, "source_service", None)  # event/broadcast handlers
            if source:
                sources.add(source)
    assert sources == set(bususers.CONSUMES[service])


def matches(pattern, name):
    return re.fullmatch(pattern, name) is not None


def test_a_service_writes_only_its_own_names_and_reads_only_what_it_binds():
    scoring = bususers.service_permissions("scoring")
    for own in ("scoring.events", "scoring.shards", "scoring.shard.11", "retry.scoring.shards",
                "dlq.evt-violations-ViolationRecorded--scoring.on_violation",
                "amq.default", "lianchen.dlx"):
        assert matches(scoring["write"], own), own
    for foreign in ("violations.events", "repair.events", "registry.shards", "lianchen.intake",
                    "dlq.evt-violations-ViolationRecorded--registry.on_violation_recorded",
                    "restrictions.shard.0", "scoringx.events"):
        assert not matches(scoring["write"], foreign), foreign
        assert not matches(scoring["configure"], foreign), foreign
    assert matches(scoring["read"], "violations.events")
    assert not matches(scoring["read"], "notifications.events")
    assert not matches(bususers.service_permissions("violations")["write"], "repair.events")


def test_agencies_platforms_operator_and_monitor():
    agency = bususers.agency_permissions("FJAMR")
    assert matches(agency["write"], "lianchen.intake")
    assert not any(matches(agency["write"], name) for name in
                   ("amq.default", "violations.events", "repair.events", "lianchen.dlx"))
    assert agency["configure"] == "^$" and matches(agency["read"], "replies.FJAMR")
    assert not matches(agency["read"], "replies.SAMR")
    platform = bususers.platform_permissions("mall")
    assert matches(platform["read"], "notices.mall") and matches(platform["read"], "notices.mall.x")
    assert not matches(platform["read"], "notices.other") and platform["write"] == "^$"
    operator = bususers.operator_permissions()
    assert matches(operator["write"], "scoring.shards") and not matches(operator["write"],
                                                                        "violations.events")
    assert bususers.MONITOR_PERMISSIONS == {"configure": "^$", "write": "^$", "read": "^$"}
    with pytest.raises(ValueError, match="agency code"):
        bususers.agency_user(NS, "a.b")  # a dot would make it another user's name


def test_guest_is_the_single_user_development_default_and_checks_nothing():
    check = ProducerCheck(uri("guest", "guest"), "scoring")
    assert not check.enforced
    assert check.refusal(None, {}, "violations", "ViolationRecorded", b"{}") is None


def test_only_the_producers_user_or_a_sealed_copy_passes():
    check = ProducerCheck(uri(f"{NS}.scoring", "scoring-secret"), "scoring")
    body = b'{"event_id": "e1"}'
    args = ("violations", "ViolationRecorded", body)
    assert check.refusal(f"{NS}.violations", {}, *args) is None
    assert "only 'lianchen.violations'" in check.refusal(f"{NS}.repair", {}, *args)
    assert "without user_id" in check.refusal(None, {}, *args)
    sealed = check.seal_headers("violations", "ViolationRecorded", body)
    assert sealed[PRODUCER_HEADER] == f"{NS}.violations"
    for relayer in (f"{NS}.scoring", f"{NS}.operator"):  # its own retry, the operator's replay
        assert check.refusal(relayer, sealed, *args) is None
    assert check.refusal(f"{NS}.repair", sealed, *args) is not None  # not a relayer
    # the seal covers the body, the type and the producer; another password, another key
    assert check.refusal(f"{NS}.scoring", sealed, "violations", "ViolationRecorded",
                         b'{"event_id": "e2"}') is not None
    assert check.refusal(f"{NS}.scoring", sealed, "violations", "ViolationRevoked", body)
    other = ProducerCheck(uri(f"{NS}.scoring", "another-password"), "scoring")
    assert other.refusal(f"{NS}.scoring", sealed, *args) is not None
    registry = ProducerCheck(uri(f"{NS}.registry", "registry-secret"), "registry")
    forged = registry.seal_headers("violations", "ViolationRecorded", body)
    assert check.refusal(f"{NS}.operator", forged, *args) is not None  # registry's seal
