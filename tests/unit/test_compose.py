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


def interpolate(value: str) -> str:
    """As compose would with every required variable set (to a URL-safe sample value)."""
    value = re.sub(r"\$\{([A-Z0-9_]+):\?[^}]*\}", lambda m: f"sample-{m[1].lower()}", value)
    return re.sub(r"\$\{([A-Z0-9_]+):-([^}]*)\}", lambda m: m[2], value)


def env_of(service: dict, raw: bool = False) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...] form
        env = dict(item.split("=", 1) for item in env)
    return env if raw else {key: interpolate(str(value)) for key, value in env.items()}


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
    assert "./infra/rabbitmq/rabbitmq.conf:" in mounts
    for name in ("rabbitmq", "rabbitmq-setup"):
        for volume in services[name].get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{name} mounts missing file {source}"
    conf = conf_entries(ROOT / "infra/rabbitmq/rabbitmq.conf")
    assert "load_definitions" not in conf and "loopback_users.guest" not in conf
    # the topology and the least-privilege users: applied by the one-shot job as the admin
    setup = services["rabbitmq-setup"]
    assert setup["restart"] == "no" and not setup.get("profiles")
    assert setup["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}
    assert "./infra/rabbitmq/definitions.json:/app/infra/rabbitmq/definitions.json:ro" in \
        setup["volumes"]
    command = command_of(setup)
    assert "shared.broker_admin apply --vhost /" in command
    assert "shared.broker_admin users --vhost / --passwords-from-env" in command
    assert env_of(rabbit)["RABBITMQ_DEFAULT_USER"] == "lianchen-admin"


def test_mongo_is_a_replica_set(services):
    mongo = services["mongo"]
    command = command_of(mongo)
    assert "--replSet rs0" in command or "--replSet=rs0" in command, command
    assert "--bind_ip_all" in command, command
    assert "rs.initiate" in healthcheck_test(mongo), "mongo healthcheck must initiate the replica set"


@pytest.mark.parametrize("name", ["mongo", "mongo-1"])
def test_mongo_has_authentication_and_one_user_per_service_database(services, name):
    """The store: a root and one user per service (infra/mongo/init-users.js, run on the first
    start), the members authenticating each other with the key file; no port published."""
    mongo = services[name]
    assert "--keyFile /etc/mongo-keyfile" in command_of(mongo)
    assert "LIANCHEN_MONGO_KEYFILE" in " ".join(mongo["entrypoint"])
    env = env_of(mongo)
    assert env["MONGO_INITDB_ROOT_USERNAME"] == "root"
    assert "./infra/mongo/init-users.js:/docker-entrypoint-initdb.d/10-users.js:ro" in \
        mongo["volumes"]
    script = (ROOT / "infra/mongo/init-users.js").read_text(encoding="utf-8")
    for service in APP_SERVICES:
        assert f'"{service}"' in script and f"MONGO_PASSWORD_{service.upper()}" in env
    assert "user: `lianchen_${service}`" in script
    assert 'role: "readWrite", db: `${prefix}_${service}`' in script  # its own database only
    assert not services[name].get("ports")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_service_connects_as_its_own_broker_and_store_user(services, name):
    from kombu import Connection
    from pymongo.uri_parser import parse_uri

    for compose_name in (name, f"{name}-cluster"):
        env = env_of(services[compose_name])
        assert Connection(env["AMQP_URI"]).userid == f"lianchen.{name}"
        assert parse_uri(env["MONGO_URI"])["username"] == f"lianchen_{name}"
        assert parse_uri(env["MONGO_URI"])["options"]["authSource"] == "admin"
        assert "lianchen.monitor:" in env["RABBIT_MGMT_URL"]
    setup_env = env_of(services["rabbitmq-setup"])
    assert f"BROKER_PASSWORD_{name.upper()}" in setup_env


SECRET_NAME = re.compile(r"PASS|PASSWORD|COOKIE|KEYFILE|PII_KEY|SECRET")
REQUIRED = re.compile(r"\$\{[A-Z0-9_]+:\?[^}]+\}")


def test_every_secret_is_required_from_the_environment(services):
    """No default secret anywhere: each password, the cookie, the key file and the identity
    key is ``${VAR:?message}`` (compose refuses to start without it), in plain values and in
    the userinfo of every URI; and no guest."""
    text = COMPOSE.read_text(encoding="utf-8")
    assert "guest" not in text
    checked = 0
    for name, service in services.items():
        for key, value in env_of(service, raw=True).items():
            value = str(value)
            if SECRET_NAME.search(key) and key != "RABBITMQ_DEFAULT_USER":
                assert REQUIRED.fullmatch(value), f"{name}: {key}={value!r} is not ${{VAR:?}}"
                checked += 1
            for password in re.findall(r"://[^:/@\s]+:(\$\{[^}]*\}|[^@\s]*)@", value):
                assert REQUIRED.fullmatch(password), f"{name}: {key} has password {password!r}"
                checked += 1
    assert checked > 50


def _published(service) -> list[str]:
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):  # long form
            out.append(f"{port.get('host_ip', '')}:{port.get('published')}:{port.get('target')}")
        else:
            out.append(str(port))
    return out


def test_nothing_is_published_on_all_interfaces(services):
    published = {name: _published(service) for name, service in services.items()}
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert not published["mongo"] and not any(published[n] for n in MONGO_NODES)
    assert published["rabbitmq"] == ["127.0.0.1:5672:5672", "127.0.0.1:15672:15672"]


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
    assert depends == {"rabbitmq-setup": {"condition": "service_completed_successfully"},
                       "mongo": {"condition": "service_healthy"}}, depends


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

    assert service.get("ports") == [f"127.0.0.1:{HOST_PORTS[name]}:8000"]


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
    for name in ("rabbitmq", "rabbitmq-setup", "mongo", *APP_SERVICES):
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
    assert "loopback_users.guest" not in conf, "no guest on the network"
    assert "load_definitions" not in conf, "the topology is applied once all nodes run"
    plugins = (ROOT / "infra/rabbitmq/enabled_plugins").read_text(encoding="utf-8")
    assert "rabbitmq_consistent_hash_exchange" in plugins and "rabbitmq_management" in plugins


def test_topology_is_applied_once_the_three_nodes_run(services):
    init = services["rabbitmq-init"]
    assert command_of(init) == ("sh -c python -m shared.broker_admin apply --vhost / --wait-nodes 3"
                                " && python -m shared.broker_admin users --vhost / "
                                "--passwords-from-env --agency SXAMR --platform demo-mall")
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
    value = str(env_of(services[name], raw=True).get("LIANCHEN_PII_KEY", ""))
    assert re.fullmatch(r"\$\{LIANCHEN_PII_KEY:\?[^}]+\}", value), value
    others = [n for n, s in services.items()
              if n.split("-")[0] not in ("registry", "violations", "restrictions")]
    assert not [n for n in others if "LIANCHEN_PII_KEY" in env_of(services[n])]
    assert not [n for n, s in services.items() if "LIANCHEN_DEV" in env_of(s)]
