"""The command-line tool against the running system: every command that needs it."""
import json
import os
import signal
import subprocess
import sys

import pytest

from shared.agency_client import AgencyPublisher
from shared.cli import PORTS, main
from tests.factories import violation

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli_env(system, monkeypatch):
    """The tool pointed at the test system, with an administrator's key."""
    env = {f"LIANCHEN_{service.upper()}_URL": system.url(service) for service in system.services}
    env.update(LIANCHEN_KEY=system.key("administrator", "cli"), AMQP_URI=system.operator_uri,
               DB_PREFIX=system.db_prefix)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def restricted(system, code):
    session = system.session("gatekeeper", "cli-bank")
    return system.wait_for(lambda: session.get(system.url(
        "restrictions", f"/v1/entities/{code}/status")).json()["record"] == "restricted",
        message=f"{code} to be restricted")


def test_submit_status_and_changes(system, cli_env, tmp_path, capsys):
    body = violation()
    record = tmp_path / "record.json"
    record.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    assert main(["submit", str(record)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "recorded"
    restricted(system, body["uscc"])

    assert main(["status", body["uscc"]]) == 0
    out = capsys.readouterr().out
    assert body["uscc"] in out and "PROHIBITED" in out and "[consideration]" in out and "answer " in out

    assert main(["changes", "--limit", "2"]) == 0  # pages of 2 until the end
    captured = capsys.readouterr()
    mine = [line for line in captured.out.splitlines() if body["uscc"] in line]
    assert mine and all(" imposed " in line for line in mine)
    cursor = captured.err.split("--since ")[1].strip()
    assert main(["changes", "--since", cursor]) == 0  # nothing new since then
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("0 change(s)")

    assert main(["status", "91350100M000100Y44"]) == 2  # bad check character
    assert "uscc" in capsys.readouterr().err


def test_changes_follow_prints_a_change_as_it_happens(system, cli_env):
    body = violation()
    follower = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "changes", "--follow", "--interval", "0.2",
         "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **cli_env, "PYTHONFAULTHANDLER": "1"},  # SIGABRT: traceback
        # A run started in the background (``make test &``, CI) ignores SIGINT, and a child
        # inherits that: Ctrl-C would never reach the follower. Give it the default back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
            agency.publish(body)
        seen = None
        for line in follower.stdout:  # blocks until the follower prints; the timeout guards
            change = json.loads(line)
            if change["uscc"] == body["uscc"]:
                seen = change
                break
        assert seen and seen["change"] == "imposed"
    finally:
        follower.send_signal(signal.SIGINT)
        # Read what is left: a full pipe that nobody reads would block the follower's exit.
        try:
            _, err = follower.communicate(timeout=20)
        except Exception:  # noqa: BLE001 - a timeout (eventlet's green Popen raises its own
            # TimeoutExpired class, not subprocess's): say where the follower was stuck
            follower.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            _, err = follower.communicate(timeout=10)
            raise AssertionError(f"the follower ignored Ctrl-C for 20 s; stderr: {err[-2000:]}")
    assert follower.returncode == 0
    assert "resume with: lianchen changes" in err  # --since CURSOR once a page was done


def test_health_shows_services_store_broker_and_queue_depths(system, cli_env, capsys):
    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
        agency.publish(violation(uscc="91350100M000100Y44"))  # refused: dead-lettered

    from shared.broker_admin import queue_depths
    system.wait_for(lambda: queue_depths(system.vhost).get("dlq.violations.intake", 0) >= 1,
                    message="a dead letter")
    assert main(["health", "--vhost", system.vhost]) == 0
    out = capsys.readouterr().out
    states = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]
              if line.strip() and not line.startswith(("queue", "dlq.", "(", "evt-", "retry."))
              and len(line.split()) > 1}
    for part in list(PORTS) + ["store", "broker"]:
        assert states.get(part) == "up", out
    dlq = next(line for line in out.splitlines() if line.startswith("dlq.violations.intake"))
    assert int(dlq.split()[-1]) >= 1

    assert main(["dead-letters", "list", "dlq.violations.intake"]) == 0
    assert "uscc" in capsys.readouterr().out  # the reason names the field


def test_import_and_keys(system, cli_env, tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join(json.dumps(violation(agency_code="FJAMR-350100"),
                                            ensure_ascii=False) for _ in range(3))
                       + "\n" + json.dumps(violation(severity="dreadful")) + "\n",
                       encoding="utf-8")
    os.environ["LIANCHEN_KEY"] = system.key("agency", "FJAMR")  # monkeypatch restores it
    assert main(["import", str(history), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "records: 4  accepted: 3  duplicates: 0  rejected: 1" in out

    assert main(["keys", "create", "gatekeeper", "cli-created"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("lc_")
    assert main(["keys", "list"]) == 0
    assert "cli-created" in capsys.readouterr().out
    assert main(["keys", "create", "emperor", "x"]) == 2
    assert "role" in capsys.readouterr().err
