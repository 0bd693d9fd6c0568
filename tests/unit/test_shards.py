"""Per-entity routing: the partition key of an event, and the hand-over decision (no broker)."""
from contracts.events import make_event
from contracts.violation import ViolationSchema
from shared.shards import (instance_of, management_urls, partition_key, shard_queue_name,
                           shards_to_yield, vhost_of)
from tests.factories import violation

CODE = "91350100M000100Y43"


def test_the_key_is_the_payloads_uscc_or_that_of_its_record_or_restriction():
    record = ViolationSchema().load(violation(uscc=CODE))
    recorded = make_event("ViolationRecorded", {"violation_id": "A/1", "version": 1,
                                                "status": "active", "record": record},
                          producer="violations", correlation_id="c")
    assert partition_key(recorded) == CODE
    assert partition_key({"payload": {"uscc": CODE, "x": {"uscc": "other"}}}) == CODE
    assert partition_key({"payload": {"restriction": {"uscc": CODE}, "lifted_at": "t"}}) == CODE
    assert partition_key({"payload": {"partition_key": "k-1", "uscc": CODE}}) == "k-1"


def test_events_without_an_entity_have_no_key():
    assert partition_key({"payload": {"message_id": "m", "errors": []}}) is None
    assert partition_key({"n": 1}) is None
    assert partition_key("not an envelope") is None
    assert partition_key({"payload": {"uscc": ""}}) is None


def consumer(instance, shard, active, service="scoring"):
    return {"consumer_tag": f"{instance}|{shard}|1", "active": active,
            "queue": {"name": shard_queue_name(service, shard)}}


def test_the_first_instance_hands_over_all_beyond_its_share_where_others_wait():
    rows = [consumer("a", k, True) for k in range(12)] + \
           [consumer("b", k, False) for k in range(12)] + \
           [consumer("c", k, False) for k in range(12)]
    given = shards_to_yield(rows, "a", "scoring", 12)
    assert len(given) == 8  # keeps ceil(12 / 3) = 4
    assert shards_to_yield(rows, "b", "scoring", 12) == []  # active nowhere: nothing to give


def test_a_balanced_or_lonely_instance_keeps_its_shards():
    balanced = [consumer(i, k, k % 2 == n) for n, i in enumerate("ab") for k in range(12)]
    assert shards_to_yield(balanced, "a", "scoring", 12) == []
    alone = [consumer("a", k, True) for k in range(12)]
    assert shards_to_yield(alone, "a", "scoring", 12) == []
    # nobody waits on shard 0..5: only shards someone can take are handed over
    partial = [consumer("a", k, True) for k in range(12)] + \
              [consumer("b", k, False) for k in range(6, 12)]
    assert set(shards_to_yield(partial, "a", "scoring", 12)) == {
        shard_queue_name("scoring", k) for k in range(6, 12)}


def test_other_services_consumers_do_not_count():
    rows = [consumer("a", k, True) for k in range(12)] + \
           [consumer("b", k, False, service="registry") for k in range(12)]
    assert shards_to_yield(rows, "a", "scoring", 12) == []


def test_consumer_tags_name_their_instance():
    assert instance_of("vm.example.org.4242.a1b2c3|7|3") == "vm.example.org.4242.a1b2c3"


def test_connection_settings_for_one_node_and_for_a_cluster():
    assert vhost_of("amqp://guest:guest@127.0.0.1:5672/") == "/"
    assert vhost_of("amqp://u:p@h:5672/e2eabc") == "e2eabc"
    assert vhost_of("amqp://u:p@a:5672/v1;amqp://u:p@b:5672/v1") == "v1"
    assert vhost_of("amqp://u:p@h:5672/%2F") == "/"
    assert management_urls({"RABBIT_MGMT_URL": "http://g:g@a:15672, http://g:g@b:15672/"}) == [
        "http://g:g@a:15672", "http://g:g@b:15672"]
