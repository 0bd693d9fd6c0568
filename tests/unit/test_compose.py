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
    assert "urllib" in test and "/readyz" in test and ":8000" in test, test

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


# -- cluster profile (docs/scaling.md) ---------------------------------------------------------
RABBIT_NODES = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3")
MONGO_NODES = ("mongo-1", "mongo-2", "mongo-3")
CLUSTER_APPS = {f"{name}-cluster": name for name in APP_SERVICES}


def conf_entries(path: Path) -> dict[str, str]:
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            entries[key.strip()] = value.strip()
    return entries


def test_cluster_pieces_exist_only_in_the_cluster_profile(services):
    cluster = {*RABBIT_NODES, *MONGO_NODES, "rabbitmq-init", "mongo-init", *CLUSTER_APPS}
    assert cluster <= set(services), sorted(cluster - set(services))
    for name in cluster:
        assert services[name].get("profiles") == ["cluster"], \
            f"{name}: must be in the cluster profile only (plain 'docker compose up' is one node)"
    for name in ("rabbitmq", "mongo", *APP_SERVICES):
        assert not services[name].get("profiles"), f"{name}: the single-node stack has no profile"


def test_every_dependency_is_a_defined_service(services):
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown service {dependency}"


@pytest.mark.parametrize("name", RABBIT_NODES)
def test_rabbitmq_node(services, name):
    node = services[name]
    image, _, tag = node["image"].partition(":")
    assert image == "rabbitmq" and tag.endswith("-management"), node["image"]
    major, minor = (int(part) for part in tag.split("-")[0].split(".")[:2])
    assert (major, minor) >= (3, 13), "default_queue_type (cluster.conf) needs RabbitMQ 3.13+"
    assert node["hostname"] == name
    mounts = {v.split(":")[1]: v.split(":")[0] for v in node["volumes"]}
    assert mounts["/etc/rabbitmq/conf.d/20-lianchen.conf"] == "./infra/rabbitmq/cluster.conf"
    assert mounts["/etc/rabbitmq/enabled_plugins"] == "./infra/rabbitmq/enabled_plugins"
    assert mounts["/var/lib/rabbitmq"] == f"{name}-data", "each node keeps its own state"
    assert f"{name}-data" in yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["volumes"]
    entrypoint = " ".join(node["entrypoint"])
    assert ".erlang.cookie" in entrypoint and "exec docker-entrypoint.sh rabbitmq-server" in entrypoint
    assert "rabbitmq-diagnostics" in healthcheck_test(node)


def test_rabbitmq_nodes_share_one_cookie(services):
    cookies = {services[name]["environment"]["LIANCHEN_ERLANG_COOKIE"] for name in RABBIT_NODES}
    assert len(cookies) == 1, cookies


def test_cluster_conf_forms_one_cluster_of_quorum_queues(services):
    conf = conf_entries(ROOT / "infra/rabbitmq/cluster.conf")
    assert conf["cluster_formation.peer_discovery_backend"] == "classic_config"
    listed = {v for k, v in conf.items() if k.startswith("cluster_formation.classic_config.nodes.")}
    assert listed == {f"rabbit@{services[name]['hostname']}" for name in RABBIT_NODES}
    assert conf["default_queue_type"] == "quorum"
    assert conf["cluster_partition_handling"] == "pause_minority"
    assert conf["loopback_users.guest"] == "false"
    assert "load_definitions" not in conf, "the topology is applied once all nodes run"
    plugins = (ROOT / "infra/rabbitmq/enabled_plugins").read_text(encoding="utf-8")
    assert "rabbitmq_consistent_hash_exchange" in plugins and "rabbitmq_management" in plugins


def test_topology_is_applied_once_the_three_nodes_run(services):
    init = services["rabbitmq-init"]
    assert command_of(init) == "python -m shared.broker_admin apply --vhost / --wait-nodes 3"
    assert init["restart"] == "no"
    assert {n: c["condition"] for n, c in init["depends_on"].items()} == \
        {name: "service_healthy" for name in RABBIT_NODES}
    assert "./infra/rabbitmq/definitions.json:/app/infra/rabbitmq/definitions.json:ro" in init["volumes"]
    from shared import broker_admin
    assert callable(broker_admin.wait_for_nodes)


def test_shard_queues_are_quorum_queues_with_one_active_consumer():
    from shared.shards import shard_exchange, shard_queue
    queue = shard_queue("scoring", 3)
    assert queue.name == "scoring.shard.3"
    assert queue.queue_arguments == {"x-queue-type": "quorum", "x-single-active-consumer": True}
    assert shard_exchange("scoring").type == "x-consistent-hash"


@pytest.mark.parametrize("name", MONGO_NODES)
def test_mongo_replica_set_member(services, name):
    node = services[name]
    assert node["image"] == "mongo:7" and node["hostname"] == name
    command = command_of(node)
    assert "--replSet rs0" in command and "--bind_ip_all" in command
    assert f"{name}-data:/data/db" in node["volumes"]
    assert "ping" in healthcheck_test(node)


def test_replica_set_is_initiated_once_with_the_three_members(services):
    init = services["mongo-init"]
    assert init["restart"] == "no"
    assert {n: c["condition"] for n, c in init["depends_on"].items()} == \
        {name: "service_healthy" for name in MONGO_NODES}
    script = command_of(init)
    assert "rs.initiate" in script and "_id: 'rs0'" in script and "rs.status()" in script
    members = re.findall(r"host: '([\w-]+):27017'", script)
    assert sorted(members) == list(MONGO_NODES)
    assert "primary" in script, "the job ends once the set has a primary"


@pytest.mark.parametrize("cluster_name,name", CLUSTER_APPS.items())
def test_cluster_service_replicas_and_connections(services, cluster_name, name):
    from kombu import Connection
    from pymongo.uri_parser import parse_uri
    from shared.shards import management_urls, vhost_of

    service = services[cluster_name]
    assert service["deploy"]["replicas"] >= 2
    assert re.findall(r"services\.(\w+)\.service", command_of(service)) == [name]
    assert "--config infra/nameko.yaml" in command_of(service)
    assert not service.get("ports"), "replicas cannot share a host port"
    assert service["build"]["dockerfile"] == "infra/Dockerfile"
    assert {n: c["condition"] for n, c in service["depends_on"].items()} == {
        "rabbitmq-init": "service_completed_successfully",
        "mongo-init": "service_completed_successfully"}
    assert "/readyz" in healthcheck_test(service)

    env = env_of(service)
    nodes = Connection(env["AMQP_URI"]).alt  # kombu fails over along this list
    assert [Connection(uri).hostname for uri in nodes] == list(RABBIT_NODES)
    assert vhost_of(env["AMQP_URI"]) == "/"
    mongo = parse_uri(env["MONGO_URI"])
    assert [host for host, _ in mongo["nodelist"]] == list(MONGO_NODES)
    assert mongo["options"]["replicaSet"] == "rs0"
    assert len(management_urls({"RABBIT_MGMT_URL": env["RABBIT_MGMT_URL"]})) == 3
    assert int(env["SHARDS"]) % 3 == 0, "an even share of shards for three replicas"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_single_node_settings_parse_the_same_way(services, name):
    from kombu import Connection
    from pymongo.uri_parser import parse_uri
    from shared.shards import vhost_of

    env = env_of(services[name])
    assert Connection(env["AMQP_URI"]).alt == []  # one node, no alternates
    assert Connection(env["AMQP_URI"]).hostname == "rabbitmq"
    assert vhost_of(env["AMQP_URI"]) == "/"
    assert parse_uri(env["MONGO_URI"])["options"]["replicaSet"] == "rs0"


@pytest.mark.parametrize("name", ["registry", "violations", "restrictions", "registry-cluster",
                                  "violations-cluster", "restrictions-cluster"])
def test_the_identity_key_holders_require_the_key_and_no_one_else_gets_it(services, name):
    """No default secret: compose refuses to start them without LIANCHEN_PII_KEY
    (``${VAR:?message}``); the services that never see a document do not get it."""
    value = str(env_of(services[name]).get("LIANCHEN_PII_KEY", ""))
    assert re.fullmatch(r"\$\{LIANCHEN_PII_KEY:\?[^}]+\}", value), value
    others = [n for n, s in services.items()
              if n.split("-")[0] not in ("registry", "violations", "restrictions")]
    assert not [n for n in others if "LIANCHEN_PII_KEY" in env_of(services[n])]
    assert not [n for n, s in services.items() if "LIANCHEN_DEV" in env_of(s)]
