"""Webhook targets checked at registration and at delivery; the receiver's answer capped; a
correlation id that cannot travel in a header does not make a notice retry forever."""
import pytest

from contracts.events import make_event
from nameko.standalone.events import event_dispatcher
from services.notifications.service import NotificationsService
from services.registry.service import RegistryService
from tests.factories import make_uscc
from tests.integration.conftest import wait_for
from tests.integration.test_notifications import (FAST, World, db_prefix,  # noqa: F401
                                                  restriction, world)
from tests.notify_support import Receiver
from tests.system import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def strict_world(container_factory, config, make_session, db):
    """As ``world``, with no allow-list: loopback receivers are refused, as in production."""
    port = free_port()
    container_factory(RegistryService, {**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
                      ).start()
    strict = {**config, **FAST, "NOTIFY_ALLOW_TARGETS": ""}
    container_factory(NotificationsService, strict).start()
    receiver = Receiver().start()
    yield World(strict, port, make_session, receiver, db)
    receiver.stop()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/hook", "http://127.1:{port}/hook", "http://2130706433:{port}/",
    "http://localhost:{port}/hook", "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://169.254.169.254/latest/meta-data", "http://10.0.0.7/hook",
    "http://user:pw@127.0.0.1:{port}/hook",
])
def test_a_webhook_to_an_internal_address_is_refused_at_registration(strict_world, url):
    response = strict_world.session("platform", "mall-a").post("/v1/subscriptions", json={
        "kind": "platform", "platform_id": "mall-a", "webhook_secret": "s" * 24,
        "webhook_url": url.format(port=strict_world.receiver.port)})
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["webhook_url"]


def test_a_webhook_to_an_internal_address_is_refused_at_delivery(strict_world):
    """Registered when it resolved elsewhere (or before the check): the delivery checks the
    address it connects to, and the receiver never sees the request."""
    code = make_uscc()
    strict_world.member(code, "mall-a")
    strict_world.db.subscriptions.insert_one({
        "_id": "mall-a", "kind": "platform", "platform_id": "mall-a", "measures": [],
        "webhook_url": strict_world.receiver.url("/hooks/mall-a"),
        "webhook_secret": "s" * 24, "amqp_queue": None})
    strict_world.impose(restriction(code))
    wait_for(lambda: strict_world.db.dead_letters.find_one({}), timeout=20,
             message="the notice dead-lettered")
    letter = strict_world.db.dead_letters.find_one({})
    assert "webhook target refused" in letter["reason"]
    assert strict_world.receiver.requests == []


def test_an_endless_answer_is_read_only_in_part_and_the_notice_delivered(world):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    world.receiver.behave["/hooks/mall-a"] = "endless"
    world.impose(restriction(code))
    wait_for(lambda: world.status("mall-a") == "delivered", timeout=20,
             message="delivered without reading the whole answer")
    notice = world.db.notices.find_one({})
    assert notice["delivery"]["attempts"] == 0, notice["delivery"]  # the first attempt
    world.receiver.released.set()


def test_a_non_ascii_correlation_id_does_not_make_a_notice_retry_forever(world):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    r = restriction(code)
    event_dispatcher(world.config)("restrictions", "RestrictionImposed", make_event(
        "RestrictionImposed", r, producer="restrictions", correlation_id="关联-编号",
        event_id=f"{r['restriction_id']}:imposed"))
    wait_for(lambda: world.status("mall-a") == "delivered", timeout=20,
             message="delivered despite the correlation id")
    [got] = world.receiver.accepted("/hooks/mall-a")
    assert got.headers["X-Correlation-Id"].isascii()
