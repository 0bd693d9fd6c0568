"""AsyncAPI 2.6 document of the broker: intake, events, dead letters.

Built from the same marshmallow schemas the producers and consumers use: the intake payloads
(``contracts.violation``) and every event type in ``contracts.events.PAYLOADS`` inside its
envelope. A new event type needs its producing service in ``PRODUCERS``: the contract tests
fail until it is there, and check that every ``make_event`` call and every ``event_handler``
in ``services/`` agrees with it.
"""
from __future__ import annotations

import copy
import inspect
import warnings
from functools import lru_cache

from contracts import events, http
from contracts.openapi import dumps, new_spec, schema_name
from contracts.violation import AmendmentSchema, RevocationSchema, ViolationSchema

ASYNCAPI_VERSION = "2.6.0"
AMQP_BINDING = "0.2.0"
INTAKE_EXCHANGE = "lianchen.intake"
INTAKE_QUEUE = "violations.intake"
DLX = "lianchen.dlx"

# Which service publishes each event type, on the exchange "<service>.events" (nameko's
# event dispatcher), with the event type as routing key.
PRODUCERS: dict[str, str] = {
    "ViolationRecorded": "violations",
    "ViolationAmended": "violations",
    "ViolationRevoked": "violations",
    "ViolationRejected": "violations",
    "EntityRegistered": "registry",
    "MembershipsChanged": "registry",
    "CreditChanged": "scoring",
    "RestrictionImposed": "restrictions",
    "RestrictionsImposed": "restrictions",
    "RestrictionLifted": "restrictions",
    "SupervisionActionRecorded": "restrictions",
    "PersonRestrictionImposed": "restrictions",
    "PersonRestrictionLifted": "restrictions",
    "BarredAppointmentRecorded": "registry",
    "RecordRepaired": "repair",
    "ObjectionOpened": "repair",
    "ObjectionDecided": "repair",
    "MerchantCleared": "notifications",
}

# What each event says (the payload schema's own docstring when it is not here).
SUMMARIES: dict[str, str] = {
    "ViolationRecorded": "A violation was recorded (version 1 of the record). schema_version 2 "
                         "(record v2) adds registration_region and the record's place_code, "
                         "procedure, published_at, persons and penalty type none; consumers "
                         "accept 1 (read with place_code = the USCC's region, procedure "
                         "ordinary) and 2",
    "ViolationAmended": "A recorded violation was amended: a new version of the record. "
                        "schema_version 2 as ViolationRecorded; consumers accept 1 and 2",
    "ViolationRevoked": "A violation was revoked; the measures it caused are lifted. "
                        "schema_version 2 as ViolationRecorded; consumers accept 1 and 2",
    "ViolationRejected": "A submission was refused; the rejections store keeps the reasons",
    "EntityRegistered": "An entity was registered, or created provisionally from a violation",
    "MembershipsChanged": "An entity's platform memberships changed: the whole list as it now "
                          "is, with a version (newest wins)",
    "CreditChanged": "An entity's credit score or risk class changed",
    "RestrictionImposed": "A measure was imposed on an entity in a sector. No longer "
                          "published since RestrictionsImposed (one event per decision); "
                          "consumers still accept it for one release (old dead letters "
                          "replay). schema_version 2 (catalog format 2) adds effect, subject "
                          "and bases; consumers accept 1 (read as effect prohibit, subject "
                          "entity, no bases) and 2",
    "RestrictionsImposed": "The measures one decision imposed on an entity: every restriction "
                           "a reconciliation of one violation created, each as "
                           "RestrictionImposed v2 (replaces one RestrictionImposed per measure)",
    "RestrictionLifted": "A restriction was lifted (revocation, amendment, repair or expiry). "
                         "schema_version 2 as RestrictionImposed; consumers accept 1 and 2",
    "SupervisionActionRecorded": "Soft supervision tools were chosen instead of measures "
                                 "(proportionality rule)",
    "PersonRestrictionImposed": "A person measure was imposed on a person id (a person the "
                                "record names in the measure's role); not part of the "
                                "entity's gate-keeping answer",
    "PersonRestrictionLifted": "A person measure was lifted (revocation, amendment or repair "
                               "of the record that caused it)",
}

# Routing key on the intake exchange -> (operation id, message name, payload schema, summary)
INTAKE = {
    "violation.record": ("recordViolation", "ViolationRecord", ViolationSchema,
                         "Record a violation (the decision as the agency took it)"),
    "violation.amend": ("amendViolation", "ViolationAmendment", AmendmentSchema,
                        "Amend a recorded violation: the full corrected record and why"),
    "violation.revoke": ("revokeViolation", "ViolationRevocation", RevocationSchema,
                         "Revoke a recorded violation"),
}

DESCRIPTION = """\
Lianchen's messaging on RabbitMQ. Agencies publish records to the topic exchange
`lianchen.intake` (queue `violations.intake`, bound to `violation.#`) with publisher confirms,
the AMQP `message_id` property (it names the message in the rejections store), an
`authorization` header holding the agency's API key, and the AMQP `user_id` property set to
the agency's own broker user (the broker checks it; an agency's key is accepted only from that
agency's broker user). Services publish events to `<service>.events` (topic) with the event
type as routing key, each event an envelope whose `payload` is the type's schema, a header
`x-lianchen-partition-key` naming the entity (its USCC) and `user_id` the producing service's
broker user (`lianchen.<service>`: an event from anyone else is not that service's); consume
them by binding your own queue.

Lianchen's own services consume through a consistent-hash exchange `<service>.shards` bound to
the event exchanges, which routes on that header into the quorum queues `<service>.shard.<k>`
(one active consumer each): every event about one entity reaches one instance at a time.
A handler's failure is retried through `retry.<service>.shards` (per-message TTL, back through
the hash exchange; `retry.<queue>` for the intake queue) with exponential backoff; after the
last attempt, or at once for a message that can never succeed, the message goes to
`lianchen.dlx` with routing key `<queue>` into `dlq.<queue>` (for an event handler
`<queue>` is `evt-<source>-<type>--<service>.<method>`), with the reason in its headers
(`lianchen dead-letters list|replay`).
"""

_NAMEKO_HEADERS = {
    "type": "object",
    "properties": {
        "nameko.correlation_id": {"type": "string", "description":
                                  "follows a violation across services and logs"},
        "nameko.principal": {"type": "string", "description":
                             "role:subject:key id of the caller that caused the event"},
        "x-lianchen-attempts": {"type": "integer", "description": "set on a retried delivery"},
        "x-lianchen-partition-key": {"type": "string", "description":
                                     "the entity the event is about (USCC): consumers' shards "
                                     "route on it"},
    },
}
_INTAKE_HEADERS = {
    "type": "object",
    "required": ["authorization"],
    "properties": {
        "authorization": {"type": "string", "description":
                          "Bearer <key> (or the bare key) of a credential with role agency; "
                          "a message without one is dead-lettered, never handled"},
    },
}
_DEAD_LETTER_HEADERS = {
    "type": "object",
    "required": ["x-lianchen-reason", "x-lianchen-queue", "x-lianchen-attempts",
                 "x-lianchen-failed-at"],
    "properties": {
        "x-lianchen-reason": {"type": "string", "description": "ExceptionType: message"},
        "x-lianchen-queue": {"type": "string", "description": "the queue it failed on"},
        "x-lianchen-attempts": {"type": "integer"},
        "x-lianchen-failed-at": {"type": "string", "format": "date-time"},
        "x-lianchen-routing-key": {"type": "string",
                                   "description": "the routing key it was first published with"},
    },
}


def _exchange(name: str) -> dict:
    return {"amqp": {"is": "routingKey", "exchange": {
        "name": name, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"},
        "bindingVersion": AMQP_BINDING}}


def _summary(schema_cls) -> str:
    """The first paragraph of the schema's own docstring (not an inherited one)."""
    doc = inspect.cleandoc(schema_cls.__dict__.get("__doc__") or "")
    return " ".join(doc.split("\n\n")[0].split())


def _schemas(named: dict[str, type]) -> dict:
    """JSON Schemas (draft-07 compatible: nullable as a type list) of marshmallow schemas."""
    spec = new_spec("schemas", openapi_version="3.1.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # two schemas under one name: fail, never suffix
        for name, schema_cls in named.items():
            spec.components.schema(name, schema=schema_cls)
        return spec.to_dict()["components"]["schemas"]


def unknown_producers() -> list[str]:
    return sorted(set(events.PAYLOADS) - set(PRODUCERS))


def build() -> dict:
    missing = unknown_producers()
    if missing:
        raise ValueError(f"event types without a producer in contracts.asyncapi.PRODUCERS: "
                         f"{', '.join(missing)}")
    named = {schema_name(events.EnvelopeSchema): events.EnvelopeSchema}
    for _, _, schema_cls, _ in INTAKE.values():
        named[schema_name(schema_cls)] = schema_cls
    for schema_cls in events.PAYLOADS.values():
        named[schema_name(schema_cls)] = schema_cls
    schemas = _schemas(named)
    envelope = schemas[schema_name(events.EnvelopeSchema)]

    channels, messages = {}, {}
    for routing_key, (operation_id, message, schema_cls, summary) in INTAKE.items():
        messages[message] = {
            "name": message, "title": summary, "contentType": "application/json",
            "headers": _INTAKE_HEADERS,
            "payload": {"$ref": f"#/components/schemas/{schema_name(schema_cls)}"},
            "description": "Set the AMQP properties message_id (your id for the message; "
                           "GET /v1/rejections/{message_id} if it is refused), correlation_id "
                           "and delivery_mode 2; publish with confirms and mandatory.",
            "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": routing_key,
                                  "bindingVersion": AMQP_BINDING}},
        }
        channels[f"{INTAKE_EXCHANGE}/{routing_key}"] = {
            "description": f"Routing key {routing_key} on {INTAKE_EXCHANGE}; consumed from "
                           f"queue {INTAKE_QUEUE} by the violations service.",
            "bindings": _exchange(INTAKE_EXCHANGE),
            "publish": {"operationId": operation_id, "summary": summary,
                        "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True,
                                              "bindingVersion": AMQP_BINDING}},
                        "message": {"$ref": f"#/components/messages/{message}"}},
        }
    for event_type, schema_cls in events.PAYLOADS.items():
        producer = PRODUCERS[event_type]
        payload = copy.deepcopy(envelope)
        payload["properties"]["type"] = {"type": "string", "enum": [event_type]}
        payload["properties"]["payload"] = {
            "$ref": f"#/components/schemas/{schema_name(schema_cls)}"}
        messages[event_type] = {
            "name": event_type, "title": event_type, "contentType": "application/json",
            "summary": SUMMARIES.get(event_type) or _summary(schema_cls) or event_type,
            "headers": _NAMEKO_HEADERS, "payload": payload,
            "correlationId": {"location": "$message.payload#/correlation_id"},
            "bindings": {"amqp": {"messageType": event_type, "bindingVersion": AMQP_BINDING}},
        }
        exchange = f"{producer}.events"
        channels[f"{exchange}/{event_type}"] = {
            "description": f"{event_type} events of the {producer} service: exchange "
                           f"{exchange}, routing key {event_type}.",
            "bindings": _exchange(exchange),
            "subscribe": {"operationId": f"on{event_type}",
                          "summary": f"{producer} publishes {event_type}",
                          "message": {"$ref": f"#/components/messages/{event_type}"}},
        }
    messages["DeadLetter"] = {
        "name": "DeadLetter", "title": "A message that failed for good",
        "summary": "The original body and headers, unchanged, plus why it failed",
        "headers": _DEAD_LETTER_HEADERS, "payload": {},
    }
    channels[DLX + "/{queue}"] = {
        "description": "Dead letters of every consumer queue, routed by the queue's name into "
                       "dlq.<queue> (lianchen dead-letters list|replay dlq.<queue>).",
        "parameters": {"queue": {"description": "the consumer queue the message failed on",
                                 "schema": {"type": "string"}}},
        "bindings": _exchange(DLX),
        "subscribe": {"operationId": "onDeadLetter",
                      "message": {"$ref": "#/components/messages/DeadLetter"}},
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:lianchen:messaging",
        "info": {"title": "Lianchen messaging", "version": http.API_VERSION,
                 "description": DESCRIPTION},
        "servers": {"local": {"url": "127.0.0.1:5672", "protocol": "amqp",
                              "protocolVersion": "0-9-1",
                              "description": "RabbitMQ of make run (vhost /)"}},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"schemas": schemas, "messages": messages},
    }


@lru_cache(maxsize=None)
def served() -> bytes:
    return dumps(build()).encode("utf-8")

