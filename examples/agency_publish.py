"""An agency's system publishing one violation record with plain pika (copy and adapt).

    LIANCHEN_KEY=lc_... python examples/agency_publish.py [AMQP_URI]

Exchange ``lianchen.intake``, routing key ``violation.record``; publisher confirms mean that
when ``basic_publish`` returns, the broker has the message on disk. Keep ``message_id``: it
names your message in the rejections store (``GET /v1/rejections/<message_id>`` on the
violations service) if the record is refused.
"""
import json
import os
import sys
import uuid
from urllib.parse import unquote, urlsplit

import pika

AMQP_URI = sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5672/%2F"
KEY = os.environ["LIANCHEN_KEY"]  # your agency's API key; a message without one is refused

record = {
    "agency_code": "SAMR-110000",
    "document_number": f"京市监罚〔2026〕{uuid.uuid4().hex[:6]}号",
    "uscc": "91110000600037341L",
    "entity_name": "北京示例科技有限公司",
    "category": "false_advertising",
    "severity": "general",
    "penalties": [{"type": "fine", "amount": "30000.00"}],
    "legal_basis": {"law": "Advertising Law (广告法)", "article": "55"},
    "occurred_at": "2026-06-01T10:00:00+08:00",
    "decided_at": "2026-08-01T10:00:00+08:00",
    "first_offence": True,
    "corrected": False,
}

# user_id: your agency's own broker user (the one in AMQP_URI). The broker refuses any other
# value, and Lianchen accepts your API key only from your broker user.
USER = unquote(urlsplit(AMQP_URI).username or "guest")

connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
channel = connection.channel()
channel.confirm_delivery()  # basic_publish now raises if the broker does not take the message
message_id = uuid.uuid4().hex
try:
    channel.basic_publish(
        exchange="lianchen.intake",
        routing_key="violation.record",
        body=json.dumps(record, ensure_ascii=False).encode("utf-8"),
        properties=pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message_id, correlation_id=uuid.uuid4().hex, user_id=USER,
            headers={"authorization": f"Bearer {KEY}"}),
        mandatory=True,  # unroutable (e.g. intake queue missing) raises instead of vanishing
    )
except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
    sys.exit(f"not accepted, publish again later: {exc}")
finally:
    connection.close()
print(f"accepted by the broker: message_id={message_id} document={record['document_number']}")
