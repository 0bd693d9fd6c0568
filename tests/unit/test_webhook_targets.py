"""Webhook targets: only public addresses, unless explicitly allowed (services.notifications.targets)."""
import socket

import pytest

from services.notifications.targets import TargetRefused, allowed_networks, resolve


def fake_dns(table):
    def getaddrinfo(host, port, type=0):
        if host not in table:
            raise socket.gaierror("no such host")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in table[host]]
    return getaddrinfo


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://127.1/hook", "http://2130706433/hook",
    "http://0x7f000001/hook", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook",
    "http://localhost:8080/hook", "http://LOCALHOST./hook", "http://api.localhost/hook",
    "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/hook", "http://192.168.1.1/",
    "http://172.16.0.1/", "http://100.64.0.1/", "http://0.0.0.0/", "http://[fe80::1]/",
    "http://[fc00::1]/", "http://224.0.0.1/",
])
def test_non_public_targets_are_refused(url):
    with pytest.raises(TargetRefused):
        resolve(url)


@pytest.mark.parametrize("url, problem", [
    ("http://user:pass@hooks.example.com/", "user name or password"),
    ("http://hooks.example.com@127.0.0.1/", "user name or password"),
    ("ftp://hooks.example.com/", "http or https"),
    ("http:///nohost", "host"),
])
def test_malformed_targets_are_refused(url, problem):
    with pytest.raises(TargetRefused, match=problem):
        resolve(url, getaddrinfo=fake_dns({"hooks.example.com": ["93.184.216.34"]}))


def test_a_name_is_judged_by_every_address_it_resolves_to():
    dns = fake_dns({"good.example": ["93.184.216.34"],
                    "mixed.example": ["93.184.216.34", "10.1.2.3"],
                    "mapped.example": ["::ffff:192.168.0.1"]})
    target = resolve("https://good.example:8443/a?b=1", getaddrinfo=dns)
    assert (target.host, target.port, target.path, target.address) == (
        "good.example", 8443, "/a?b=1", "93.184.216.34")
    for url in ("http://mixed.example/", "http://mapped.example/", "http://nowhere.example/"):
        with pytest.raises(TargetRefused):
            resolve(url, getaddrinfo=dns)


def test_the_allow_list_admits_loopback_for_local_receivers():
    allow = allowed_networks("127.0.0.0/8, ::1/128")
    assert resolve("http://127.0.0.1:9000/hook", allow).address == "127.0.0.1"
    assert resolve("http://localhost:9000/hook", allow).address in ("127.0.0.1", "::1")
    with pytest.raises(TargetRefused):
        resolve("http://10.0.0.1/hook", allow)
    with pytest.raises(ValueError):
        allowed_networks("not-a-network")
