"""Static checks of docker-compose.yml (Docker cannot run on the dev/CI machines)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("registry", "violations", "scoring", "restrictions", "notifications",
                "repair")
HOST_PORTS = {"registry": 8001, "violations": 8002, "scoring": 8003, "restrictions": 8004,
              "notifications": 8005, "repair": 8006}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...] form
        env = dict(item.split("=", 1) for item in env)
    return env


def command_of(service: dict) -> str:
    command = service.get("command")
    return " ".join(command) if isinstance(command, list) else str(command or "")


def healthcheck_test(service: dict) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    return " ".join(test) if isinstance(test, list) else str(test or "")


def test_all_containers_exist(services):
    missing = {"rabbitmq", "mongo", *APP_SERVICES} - set(services)
    assert not missing, f"docker-compose.yml lacks services: {sorted(missing)}"


@pytest.mark.parametrize("name", ["rabbitmq", "mongo", *APP_SERVICES])
def test_every_container_has_a_healthcheck(services, name):
    test = healthcheck_test(services[name])
    assert test.startswith("CMD"), f"{name}: healthcheck.test missing or not a CMD/CMD-SHELL list: {test!r}"


def test_images(services):
    assert services["rabbitmq"]["image"] == "rabbitmq:3-management"
    assert services["mongo"]["image"] == "mongo:7"


def test_rabbitmq_health_and_definitions(services):
    rabbit = services["rabbitmq"]
    assert "rabbitmq-diagnostics -q ping" in healthcheck_test(rabbit)
    mounts = " ".join(rabbit.get("volumes", []))
    assert "./infra/rabbitmq/definitions.json:" in mounts
    assert "./infra/rabbitmq/rabbitmq.conf:" in mounts
    for volume in rabbit.get("volumes", []):
        source = volume.split(":", 1)[0]
        if source.startswith("./"):
            assert (ROOT / source).is_file(), f"rabbitmq mounts missing file {source}"
    conf = (ROOT / "infra/rabbitmq/rabbitmq.conf").read_text(encoding="utf-8")
    assert re.search(r"^\s*(management\.)?load_definitions\s*=", conf, re.M), \
        "rabbitmq.conf must load the definitions at boot"


def test_mongo_is_a_replica_set(services):
    mongo = services["mongo"]
    command = command_of(mongo)
    assert "--replSet rs0" in command or "--replSet=rs0" in command, command
    assert "--bind_ip_all" in command, command
    assert "rs.initiate" in healthcheck_test(mongo), "mongo healthcheck must initiate the replica set"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_environment(services, name):
    env = env_of(services[name])
    for key in ("AMQP_URI", "MONGO_URI", "WEB_SERVER_ADDRESS", "LOG_LEVEL"):
        assert env.get(key), f"{name}: environment lacks {key}"
    assert "@rabbitmq:5672" in env["AMQP_URI"], env["AMQP_URI"]
    assert "mongo:27017" in env["MONGO_URI"] and "replicaSet=rs0" in env["MONGO_URI"], env["MONGO_URI"]
    assert env["WEB_SERVER_ADDRESS"] == "0.0.0.0:8000"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_healthy_infra(services, name):
    depends = services[name].get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on must be the long form with conditions"
    for infra in ("rabbitmq", "mongo"):
        assert infra in depends, f"{name}: does not depend on {infra}"
        assert depends[infra].get("condition") == "service_healthy", \
            f"{name}: depends_on {infra} must use condition service_healthy"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_build_command_health_port(services, name):
    service = services[name]
    build = service.get("build")
    assert isinstance(build, dict), f"{name}: must be built from infra/Dockerfile"
    dockerfile = ROOT / build.get("context", ".") / build["dockerfile"]
    assert dockerfile.is_file(), f"{name}: Dockerfile {dockerfile} does not exist"
    assert build["dockerfile"] == "infra/Dockerfile"

    command = command_of(service)
    assert command.startswith("nameko run"), command
    assert "--config infra/nameko.yaml" in command, command
    modules = re.findall(r"services\.(\w+)\.service", command)
    assert modules == [name], f"{name}: command runs {modules}, expected services.{name}.service"
    assert (ROOT / "services" / name / "service.py").is_file(), f"services/{name}/service.py missing"

    test = healthcheck_test(service)
    assert "urllib" in test and "/health" in test and ":8000" in test, test

    assert f"{HOST_PORTS[name]}:8000" in [str(p) for p in service.get("ports", [])]


def test_demo_is_behind_a_profile(services):
    demo = services.get("demo")
    assert demo is not None, "docker-compose.yml lacks the demo service"
    assert "demo" in demo.get("profiles", [])
    assert "shared.demo" in command_of(demo)


def test_dockerfile_installs_the_project():
    text = (ROOT / "infra/Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert "infra/nameko.yaml" in text
