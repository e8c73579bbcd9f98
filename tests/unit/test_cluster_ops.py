"""The cluster's files and settings: several AMQP URLs, the quorum definitions, the compose profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from wanotify.ops.rabbitmq import definitions as defs
from wanotify.shared.config import Settings
from wanotify.shared.errors import ConfigError
from wanotify.shared.topology import QUORUM_DELIVERY_LIMIT, Topology
from wanotify.shared.urls import amqp_hosts, amqp_urls, redact_url

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "amqp://u:s3cret@a:5672/,amqp://u:s3cret@b:5673/, amqp://u:s3cret@c/"


def test_amqp_url_takes_several_nodes_and_shows_each_without_its_password() -> None:
    settings = Settings.from_env({"AMQP_URL": CLUSTER})
    assert amqp_urls(settings.amqp_url) == ["amqp://u:s3cret@a:5672/", "amqp://u:s3cret@b:5673/", "amqp://u:s3cret@c/"]
    assert amqp_hosts(settings.amqp_url) == "a:5672, b:5673, c:5672"
    assert "s3cret" not in redact_url(settings.amqp_url) and redact_url(settings.amqp_url).count("u:***@") == 3


@pytest.mark.parametrize(("raw", "named"), [
    ("amqp://u:s3cret@a:5672/,", "URL 2 of 2 is ''"),
    ("amqp://u:s3cret@a:5672/,http://u:s3cret@b/", "URL 2 of 2 is 'http://u:***@b/'"),
    ("amqp://u:s3cret@a:x/,amqp://b/", "URL 1 of 2"),
])
def test_a_bad_url_in_the_list_is_named_and_no_password_is_shown(raw: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AMQP_URL": raw})
    assert named in str(caught.value) and "one per cluster node" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_quorum_definitions_make_every_queue_quorum_with_safe_dead_lettering() -> None:
    document = defs.build_definitions("wanotify", [300.0], queue_type="quorum")
    topology = Topology("wanotify", "quorum")
    for queue in document["queues"]:
        arguments = queue["arguments"]
        assert arguments["x-queue-type"] == "quorum", queue["name"]
        assert (arguments["x-dead-letter-strategy"], arguments["x-overflow"]) == ("at-least-once", "reject-publish")
        assert "x-max-priority" not in arguments  # RabbitMQ 3.x refuses it on a quorum queue
    send = {q["name"]: q["arguments"] for q in document["queues"] if q["name"] in topology.send_queues()}
    assert len(send) == 3
    for arguments in send.values():
        assert arguments["x-single-active-consumer"] is True
        assert arguments["x-delivery-limit"] == QUORUM_DELIVERY_LIMIT
        assert arguments["x-dead-letter-routing-key"] == topology.send_dead_queue


def test_the_committed_quorum_definitions_file_is_a_fresh_generation(tmp_path: Path) -> None:
    assert defs.QUORUM_OUTPUT.read_text(encoding="utf-8") == defs.render(defs.build_definitions(queue_type="quorum")), (
        "ops/rabbitmq/definitions-quorum.json is stale: run `python -m wanotify.ops.rabbitmq.definitions`")
    out = tmp_path / "q.json"
    assert defs.main(["--queue-type", "quorum", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == defs.build_definitions(queue_type="quorum")


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    return services


def test_the_cluster_profile_has_three_nodes_that_name_each_other() -> None:
    services = _services()
    nodes = {name: svc for name, svc in services.items() if name.startswith("rabbitmq-")}
    assert sorted(nodes) == ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
    conf = (ROOT / "ops/rabbitmq/cluster.conf").read_text(encoding="utf-8")
    cookies = set()
    for name, node in nodes.items():
        assert node["profiles"] == ["cluster"] and node["hostname"] == name
        assert f"= rabbit@{name}" in conf
        assert "./ops/rabbitmq/cluster.conf:/etc/rabbitmq/rabbitmq.conf:ro" in node["volumes"]
        cookies.add(node["environment"]["RABBITMQ_ERLANG_COOKIE"])
        assert not node.get("ports")  # the main broker keeps the documented ports
    assert len(cookies) == 1


def test_the_cluster_consumers_list_every_node_and_use_quorum_queues() -> None:
    services = _services()
    for name in ("notifier-cluster", "sender-cluster"):
        service = services[name]
        env = service["environment"]
        assert service["profiles"] == ["cluster"] and "build" not in service
        assert env["QUEUE_TYPE"] == "quorum"
        hosts = [(urlsplit(u).hostname, urlsplit(u).port) for u in amqp_urls(env["AMQP_URL"])]
        assert hosts == [("rabbitmq-1", 5672), ("rabbitmq-2", 5672), ("rabbitmq-3", 5672)]
        Settings.from_env({k: str(v) for k, v in env.items()})  # valid settings
        for node in ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3"):
            assert service["depends_on"][node]["condition"] == "service_healthy"
    assert services["sender-cluster"]["command"] == ["run", "sender"]
    assert services["notifier-cluster"]["command"] == ["run", "notifier"]


def test_the_cluster_stack_has_a_namespace_and_database_of_its_own_beside_the_main_stack() -> None:
    # sharing them, its sender would stand by behind the main sender's lease, and one status
    # relay would publish both stacks' events to one broker
    services = _services()
    main = Settings.from_env({k: str(v) for k, v in services["sender"]["environment"].items()})
    for name in ("notifier-cluster", "sender-cluster", "migrate-cluster"):
        own = Settings.from_env({k: str(v) for k, v in services[name]["environment"].items()})
        assert own.namespace != main.namespace and own.database_url != main.database_url
        assert services[name]["profiles"] == ["cluster"]
    assert services["migrate-cluster"]["command"] == ["migrate"]
    assert services["notifier-cluster"]["depends_on"]["migrate-cluster"]["condition"] == "service_completed_successfully"


def test_the_first_connection_tries_every_listed_node_before_giving_up(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import socket

    from wanotify.shared.broker import connect

    ports = []
    for _ in range(2):  # two ports nothing listens on
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    url = ",".join(f"amqp://guest:s3cret@127.0.0.1:{port}/" for port in ports)
    with caplog.at_level("WARNING", logger="wanotify.shared.broker"), pytest.raises(ConnectionError) as raised:
        asyncio.run(connect(url, "test"))
    # each node but the last is logged as it fails; the last one's failure is the error raised
    tried = [r.getMessage() for r in caplog.records if r.name == "wanotify.shared.broker"] + [str(raised.value)]
    assert len(tried) == len(ports)
    for port in ports:
        assert any(str(port) in line for line in tried), tried
    assert not any("s3cret" in line for line in tried)
