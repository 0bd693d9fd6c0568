"""Where a replayed dead letter goes: from the dead-letter queue's name, never its headers."""
import pytest

from shared.deadletters import destination


def test_a_handlers_dead_letter_goes_back_to_that_handler_whatever_its_headers_say():
    exchange, routing_key, headers = destination(
        "dlq.evt-violations-ViolationRecorded--repair.on_violation_recorded",
        {"x-lianchen-exchange": "repair.events", "x-lianchen-routing-key": "RecordRepaired",
         "x-lianchen-source": "repair", "x-lianchen-handler": "on_record_repaired",
         "x-lianchen-partition-key": "91350100M000100Y43", "authorization": "Bearer lc_a.b",
         "nameko.authorization": "Bearer lc_a.b", "x-lianchen-reason": "boom"})
    assert (exchange, routing_key) == ("repair.shards", "ViolationRecorded")
    assert headers == {"x-lianchen-source": "violations",
                       "x-lianchen-handler": "on_violation_recorded",
                       "x-lianchen-routing-key": "ViolationRecorded",
                       "x-lianchen-partition-key": "91350100M000100Y43"}


def test_a_queues_dead_letter_goes_back_to_that_queue():
    exchange, routing_key, headers = destination(
        "dlq.violations.intake", {"x-lianchen-exchange": "repair.events",
                                  "x-lianchen-queue": "notifications.x",
                                  "x-lianchen-routing-key": "violation.record"})
    assert (exchange, routing_key) == ("", "violations.intake")
    assert headers == {"x-lianchen-routing-key": "violation.record"}


@pytest.mark.parametrize("name", ["violations.intake", "dlq.", ""])
def test_only_dead_letter_queues_are_replayed(name):
    with pytest.raises(ValueError):
        destination(name, {})
