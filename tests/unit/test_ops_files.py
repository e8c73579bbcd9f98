"""The deployment files agree with the code: metric names, broker topology, configuration.

Dashboards and alerts that point at a metric nobody exports stay silent exactly when they are
needed; a definitions file that disagrees with the code makes every process fail at start-up
with PRECONDITION_FAILED; a compose file with a misspelt variable runs with the default.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from wanotify.ops.rabbitmq import definitions as defs
from wanotify.shared.config import Settings
from wanotify.shared.metrics import Metrics
from wanotify.shared.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_YML = ROOT / "ops/prometheus/prometheus.yml"
ALERTS_YML = ROOT / "ops/prometheus/alerts.yml"
DASHBOARD_JSON = ROOT / "ops/grafana/dashboards/wanotify.json"
DATASOURCE_YML = ROOT / "ops/grafana/provisioning/datasources/prometheus.yml"
DASHBOARD_PROVIDER_YML = ROOT / "ops/grafana/provisioning/dashboards/dashboards.yml"
DEFINITIONS_JSON = ROOT / "ops/rabbitmq/definitions.json"
RABBITMQ_CONF = ROOT / "ops/rabbitmq/rabbitmq.conf"
ENABLED_PLUGINS = ROOT / "ops/rabbitmq/enabled_plugins"
COMPOSE_YML = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# rabbitmq_prometheus names seen on a running broker (3.10.8 here; the same families and names
# are in the 3.13 collector), with the endpoint that serves them and, for /metrics/detailed,
# the `family` parameter that must be requested. Only names that were actually observed.
RABBITMQ_METRICS: dict[str, tuple[str, str | None]] = {
    "rabbitmq_identity_info": ("/metrics", None),
    "rabbitmq_build_info": ("/metrics", None),
    "rabbitmq_queues": ("/metrics", None),
    "rabbitmq_consumers": ("/metrics", None),
    "rabbitmq_queue_messages_ready": ("/metrics", None),
    "rabbitmq_queue_messages_unacked": ("/metrics", None),
    "rabbitmq_queue_messages": ("/metrics", None),
    "rabbitmq_queue_consumers": ("/metrics", None),
    "rabbitmq_detailed_queue_messages_ready": ("/metrics/detailed", "queue_coarse_metrics"),
    "rabbitmq_detailed_queue_messages_unacked": ("/metrics/detailed", "queue_coarse_metrics"),
    "rabbitmq_detailed_queue_messages": ("/metrics/detailed", "queue_coarse_metrics"),
    "rabbitmq_detailed_queue_consumers": ("/metrics/detailed", "queue_consumer_count"),
}
PROMETHEUS_BUILTINS = {"up"}

# Contract section 4, and the prefix shared/config.py reads for the API-key gateway's request shape.
CONTRACT_ENV = {
    "AMQP_URL", "DATABASE_URL", "WANOTIFY_NAMESPACE", "WHATSAPP_PROVIDER", "WHATSAPP_API_BASE_URL",
    "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_API_KEY", "WHATSAPP_SENDER",
    "SEND_GAP_SECONDS", "MAX_RETRIES", "RETRY_DELAY_SECONDS", "RETRY_BACKOFF", "DEFAULT_REGION", "METRICS_PORT",
}
GATEWAY_ENV_PREFIX = "WHATSAPP_GATEWAY_"

# Documented ports (docker-compose.yml header, README): service -> container ports published 1:1.
DOCUMENTED_PORTS = {
    "rabbitmq": {5672, 15672, 15692},
    "postgres": {5432},
    "notifier": {9101},
    "sender": {9102},
    "fake-provider": {8089},
    "prometheus": {9090},
    "grafana": {3000},
}
METRICS_PORTS = {"notifier": 9101, "sender": 9102}
SCRAPE_JOBS = {"notifier": "wanotify-notifier", "sender": "wanotify-sender"}
SEVERITIES = {"critical", "warning", "info"}


# ---------------------------------------------------------------------------------------------
# Metric names in PromQL
# ---------------------------------------------------------------------------------------------

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan", "atan2",
}


def exported_metric_names() -> set[str]:
    """Every sample name a ``Metrics()`` registry can produce, labelled children or not."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and labels removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables such as $__rate_interval
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        if word.lower() in PROMQL_WORDS or text[match.end():].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def unknown_names(expr: str, known: set[str]) -> set[str]:
    return {name for name in metric_names(expr) if name not in known}


def known_metric_names() -> set[str]:
    return exported_metric_names() | set(RABBITMQ_METRICS) | PROMETHEUS_BUILTINS


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_problems(dashboard: dict[str, Any], known: set[str]) -> list[str]:
    """Panels that show nothing: no query, an empty query, a query that selects no metric or an unknown one."""
    problems = []
    for panel in dashboard_panels(dashboard):
        if panel.get("type") == "row":
            continue
        title = panel.get("title", "?")
        exprs = [t.get("expr", "") for t in panel.get("targets", [])]
        if not exprs:
            problems.append(f"panel {title!r} has no query")
        for expr in exprs:
            names = metric_names(expr)
            if not names:
                problems.append(f"panel {title!r} has a query that selects no metric: {expr!r}")
            elif unknown := names - known:
                problems.append(f"panel {title!r} uses unknown metric(s) {sorted(unknown)}")
    return problems


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS_YML)["groups"] for rule in group["rules"]]


def scrape_jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in load_yaml(PROMETHEUS_YML)["scrape_configs"]}


def test_the_name_extractor_finds_metrics_and_ignores_functions_labels_and_keywords() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, outcome) (rate(foo_seconds_bucket{job="x", le!="1e-9"}'
            '[$__rate_interval]))) / on() group_left(a) bar_total offset 15m unless baz > 1e-3')
    assert metric_names(expr) == {"foo_seconds_bucket", "bar_total", "baz"}


def test_the_registry_scan_knows_counters_histograms_and_gauges_by_their_sample_names() -> None:
    names = exported_metric_names()
    assert {"wanotify_messages_sent_total", "wanotify_send_gap_seconds_bucket",
            "wanotify_provider_call_duration_seconds_count", "wanotify_sender_paused"} <= names
    assert "wanotify_messages_sent" not in names  # a counter is only ever scraped with _total


def test_the_dashboard_check_flags_a_panel_that_points_at_nothing() -> None:
    broken = {"panels": [
        {"type": "timeseries", "title": "typo", "targets": [{"expr": "rate(wanotify_mesages_sent_total[5m])"}]},
        {"type": "stat", "title": "empty", "targets": []},
        {"type": "row", "title": "row", "panels": [
            {"type": "stat", "title": "blank", "targets": [{"expr": "  "}]},
        ]},
    ]}
    problems = dashboard_problems(broken, known_metric_names())
    assert len(problems) == 3
    assert "wanotify_mesages_sent_total" in problems[0]


def test_every_dashboard_panel_queries_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    assert dashboard_problems(dashboard, known_metric_names()) == []


def test_the_dashboard_shows_the_metrics_operators_need() -> None:
    dashboard = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    used = {name for panel in dashboard_panels(dashboard) for target in panel.get("targets", [])
            for name in metric_names(target.get("expr", ""))}
    wanted = {
        "wanotify_messages_sent_total", "wanotify_send_gap_seconds_bucket", "wanotify_messages_failed_total",
        "wanotify_messages_dead_total", "wanotify_retries_total", "wanotify_events_parked_total",
        "wanotify_provider_call_duration_seconds_bucket", "wanotify_send_backlog_drain_seconds",
        "wanotify_sender_paused", "rabbitmq_detailed_queue_messages_ready", "rabbitmq_detailed_queue_consumers",
    }
    assert wanted - used == set()
    assert any(panel["type"] == "heatmap" for panel in dashboard_panels(dashboard))


def test_dashboard_panels_have_unique_ids_and_use_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    uid = load_yaml(DATASOURCE_YML)["datasources"][0]["uid"]
    panels = list(dashboard_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert all(target["datasource"]["uid"] == uid for target in panel["targets"]), panel["title"]


def test_every_alert_rule_uses_metrics_that_exist() -> None:
    known = known_metric_names()
    for rule in alert_rules():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names - known == set(), rule["alert"]


def test_every_alert_waits_has_a_severity_and_tells_the_on_call_what_to_do() -> None:
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert len(rule["annotations"]["description"]) > 80, rule["alert"]


def test_the_alerts_cover_dead_letters_backlog_consumers_retries_pauses_parking_and_down_targets() -> None:
    exprs = " ".join(rule["expr"] for rule in alert_rules())
    for needle in ("send\\\\.dead", "events\\\\.dead", "wanotify_messages_dead_total",
                   "wanotify_send_backlog_drain_seconds", "3600", "rabbitmq_detailed_queue_consumers",
                   "wanotify_sender_consumer_attached", "wanotify_retries_total", "wanotify_sender_paused",
                   "wanotify_events_parked_total", "up == 0"):
        assert needle in exprs, needle


def test_the_alerts_cover_paused_templates_and_a_number_meta_flagged_or_limited() -> None:
    rules = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    paused = rules["WanotifyTemplatePaused"]
    assert "wanotify_meta_template_status" in paused and "PAUSED" in paused and "DISABLED" in paused
    quality = rules["WanotifyNumberQualityLow"]
    assert {"wanotify_meta_phone_numbers", "wanotify_meta_messaging_limit_lowered"} <= metric_names(quality)
    assert "RED" in quality and "FLAGGED" in quality


def test_rabbitmq_metrics_in_use_are_scraped_from_their_endpoint_and_family() -> None:
    used = set()
    for rule in alert_rules():
        used |= metric_names(rule["expr"])
    dashboard = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            used |= metric_names(target.get("expr", ""))
    jobs = scrape_jobs().values()
    for name in sorted(used & set(RABBITMQ_METRICS)):
        path, family = RABBITMQ_METRICS[name]
        assert any(
            job.get("metrics_path", "/metrics") == path
            and (family is None or family in job.get("params", {}).get("family", []))
            and any(t.endswith(":15692") for sc in job["static_configs"] for t in sc["targets"])
            for job in jobs
        ), f"{name} needs a scrape job for {path} (family {family})"


def test_prometheus_loads_the_alert_rules_file() -> None:
    config = load_yaml(PROMETHEUS_YML)
    assert [(PROMETHEUS_YML.parent / path).resolve() for path in config["rule_files"]] == [ALERTS_YML.resolve()]


# ---------------------------------------------------------------------------------------------
# RabbitMQ definitions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("namespace", "delays"), [("wanotify", [300.0]), ("acme-prod", [60.0, 300.0, 900.0])])
def test_definitions_declare_every_topology_queue_with_its_arguments(namespace: str, delays: list[float]) -> None:
    topology = Topology(namespace)
    document = defs.build_definitions(namespace, delays)
    expected = {spec.name: spec.arguments for spec in topology.queues()}
    expected |= {topology.retry_queue(d): topology.retry_queue_spec(d).arguments for d in delays}
    queues = {q["name"]: q for q in document["queues"]}
    assert set(queues) == set(expected)
    for name, arguments in expected.items():
        assert queues[name]["arguments"] == arguments, name
        assert queues[name]["durable"] is True and queues[name]["auto_delete"] is False, name
        assert queues[name]["vhost"] == "/", name


class RecordingChannel:
    """A pika channel that only notes what ``declare_topology`` declares, as definitions entries."""

    def __init__(self) -> None:
        self.exchanges: set[tuple[str, str]] = set()
        self.queues: dict[str, dict[str, Any]] = {}
        self.bindings: list[tuple[str, str, str, dict[str, Any]]] = []

    def exchange_declare(self, name: str, exchange_type: str, durable: bool) -> None:
        assert durable
        self.exchanges.add((name, exchange_type))

    def queue_declare(self, name: str, durable: bool, arguments: dict[str, Any]) -> None:
        assert durable
        self.queues[name] = arguments

    def queue_bind(self, queue: str, exchange: str, routing_key: str, arguments: dict[str, Any] | None = None) -> None:
        self.bindings.append((exchange, queue, routing_key, arguments or {}))


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_definitions_hold_every_exchange_queue_and_binding_the_processes_declare(queue_type: str) -> None:
    from wanotify.shared.topology import declare_topology

    topology = Topology("acme", queue_type)
    declared = RecordingChannel()
    declare_topology(declared, topology)
    document = defs.build_definitions("acme", [300.0], queue_type=queue_type)
    assert document["vhosts"] == [{"name": "/"}]
    assert {(e["name"], e["type"]) for e in document["exchanges"]} == declared.exchanges
    assert all((e["durable"], e["auto_delete"], e["vhost"]) == (True, False, "/") for e in document["exchanges"])
    # the processes declare a retry queue when they first need it; the file has the default delay's
    queues = {q["name"]: q["arguments"] for q in document["queues"]}
    assert queues == declared.queues | {topology.retry_queue(300.0): topology.retry_queue_spec(300.0).arguments}
    assert sorted((b["source"], b["destination"], b["routing_key"], b["arguments"], b["destination_type"])
                  for b in document["bindings"]) == sorted((*b, "queue") for b in declared.bindings)
    # a retry queue's dead-letter exchange is in the file: what expires finds its way back
    assert queues[topology.retry_queue(300.0)]["x-dead-letter-exchange"] in {e for e, _ in declared.exchanges}


def test_two_delays_that_round_to_the_same_millisecond_share_one_retry_queue() -> None:
    document = defs.build_definitions("wanotify", [300.0, 300.0001])
    assert [q["name"] for q in document["queues"]].count(Topology().retry_queue(300.0)) == 1


def test_the_definitions_user_can_log_in_with_the_documented_password() -> None:
    document = defs.build_definitions()
    [user] = document["users"]
    raw = base64.b64decode(user["password_hash"])
    salt, digest = raw[:4], raw[4:]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert digest == hashlib.sha256(salt + defs.DEMO_PASSWORD.encode()).digest()
    assert document["permissions"] == [
        {"user": user["name"], "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]


def test_the_committed_definitions_file_is_a_fresh_generation() -> None:
    assert DEFINITIONS_JSON.read_text(encoding="utf-8") == defs.render(defs.build_definitions()), (
        "ops/rabbitmq/definitions.json is stale: run `python -m wanotify.ops.rabbitmq.definitions`")


def test_main_writes_the_definitions_file(tmp_path: Path) -> None:
    out = tmp_path / "definitions.json"
    assert defs.main([str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == defs.build_definitions()


def test_rabbitmq_loads_the_definitions_and_enables_management_and_prometheus() -> None:
    conf = dict(
        (key.strip(), value.strip())
        for key, value in (line.split("=", 1) for line in RABBITMQ_CONF.read_text().splitlines()
                           if line.strip() and not line.lstrip().startswith("#"))
    )
    assert conf["load_definitions"] == "/etc/rabbitmq/definitions.json"
    assert conf["prometheus.tcp.port"] == "15692"
    assert conf["management.tcp.port"] == "15672"
    plugins = ENABLED_PLUGINS.read_text().strip()
    assert plugins.startswith("[") and plugins.endswith("].")
    assert {p.strip() for p in plugins[1:-2].split(",")} == {"rabbitmq_management", "rabbitmq_prometheus"}


# ---------------------------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_YML)


def wanotify_services(services: dict[str, Any]) -> dict[str, Any]:
    """Services that run the wanotify image (built from the Dockerfile)."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def env_names_read_by_config() -> set[str]:
    """The variables ``Settings.from_env`` looks up (recorded, not hand-copied)."""

    class Recorder(dict):  # type: ignore[type-arg]
        def __init__(self) -> None:
            super().__init__()
            self.read: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.read.add(key)
            return super().get(key, default)

    env = Recorder()
    Settings.from_env(env)
    return set(env.read)


def published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    pairs = set()
    for entry in service.get("ports", []):
        host, container = str(entry).split(":")[-2:]
        pairs.add((int(host), int(container.split("/")[0])))
    return pairs


def test_compose_has_every_service_of_the_deployment() -> None:
    services = compose()["services"]
    assert set(services) >= {"rabbitmq", "postgres", "migrate", "notifier", "sender", "fake-provider",
                             "demo-publisher", "prometheus", "grafana"}
    assert set(wanotify_services(services)) == {"migrate", "notifier", "sender", "fake-provider", "demo-publisher"}


def test_config_reads_every_variable_of_the_contract() -> None:
    assert CONTRACT_ENV - env_names_read_by_config() == set()


def test_wanotify_services_only_set_variables_the_contract_or_config_know() -> None:
    allowed = CONTRACT_ENV | env_names_read_by_config()
    for name, service in wanotify_services(compose()["services"]).items():
        for var in service.get("environment", {}):
            assert var in allowed or var.startswith(GATEWAY_ENV_PREFIX), f"{name}: unknown variable {var}"


def test_wanotify_services_point_at_the_compose_broker_and_database_with_its_credentials() -> None:
    services = compose()["services"]
    pg = services["postgres"]["environment"]
    for name, service in wanotify_services(services).items():
        env = service["environment"]
        amqp = urlsplit(env["AMQP_URL"])
        assert (amqp.hostname, amqp.port) == ("rabbitmq", 5672), name
        # A node that loads definitions at boot has no guest user: the URL must use the defined one.
        assert (amqp.username, amqp.password) == (defs.DEMO_USER, defs.DEMO_PASSWORD), name
        db = urlsplit(env["DATABASE_URL"])
        assert (db.hostname, db.port, db.path.lstrip("/")) == ("postgres", 5432, pg["POSTGRES_DB"]), name
        assert (db.username, db.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"]), name
        assert env["WANOTIFY_NAMESPACE"] == "wanotify", name


def test_the_committed_definitions_are_for_the_compose_namespace() -> None:
    namespaces = {svc["environment"]["WANOTIFY_NAMESPACE"] for svc in wanotify_services(compose()["services"]).values()}
    assert len(namespaces) == 1
    document = json.loads(DEFINITIONS_JSON.read_text(encoding="utf-8"))
    assert document == json.loads(defs.render(defs.build_definitions(namespaces.pop())))


@pytest.mark.parametrize("role", ["notifier", "sender"])
def test_metrics_ports_match_the_prometheus_targets(role: str) -> None:
    service = compose()["services"][role]
    port = METRICS_PORTS[role]
    assert service["command"] == ["run", role]
    assert int(service["environment"]["METRICS_PORT"]) == port
    targets = [t for sc in scrape_jobs()[SCRAPE_JOBS[role]]["static_configs"] for t in sc["targets"]]
    assert targets == [f"{role}:{port}"]


def test_rabbitmq_scrape_targets_are_the_compose_broker() -> None:
    rabbit_jobs = [job for name, job in scrape_jobs().items() if name.startswith("rabbitmq")]
    assert {job.get("metrics_path", "/metrics") for job in rabbit_jobs} >= {"/metrics", "/metrics/detailed"}
    for job in rabbit_jobs:
        assert [t for sc in job["static_configs"] for t in sc["targets"]] == ["rabbitmq:15692"]


def test_published_ports_are_the_documented_ones() -> None:
    services = compose()["services"]
    header = COMPOSE_YML.read_text(encoding="utf-8").split("x-wanotify", 1)[0]
    for name, ports in DOCUMENTED_PORTS.items():
        assert published_ports(services[name]) == {(p, p) for p in ports}, name
        for port in ports:
            assert re.search(rf"^#\s+{port}\s", header, re.M), f"port {port} is not documented in the header"
    for name in set(services) - set(DOCUMENTED_PORTS):
        assert not services[name].get("ports"), f"{name} publishes an undocumented port"


def test_the_sender_talks_to_the_fake_provider_as_the_cloud_api() -> None:
    services = compose()["services"]
    env = services["sender"]["environment"]
    command = services["fake-provider"]["command"]
    assert command[0] == "fake-provider"
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert env["WHATSAPP_PROVIDER"] == "meta"
    url = urlsplit(env["WHATSAPP_API_BASE_URL"])
    assert (url.hostname, url.port) == ("fake-provider", port)
    assert env["WHATSAPP_PHONE_NUMBER_ID"] and env["WHATSAPP_ACCESS_TOKEN"]


def test_compose_only_runs_cli_commands_that_exist() -> None:
    from wanotify.ops.cli.app import main

    services = compose()["services"]
    commands = set(main.list_commands(click.Context(main)))
    for name in ("migrate", "notifier", "sender", "fake-provider"):
        assert services[name]["command"][0] in commands, name
    script = services["demo-publisher"]["command"][0]
    used = re.findall(r"\bwanotify\s+([\w-]+)", script)
    assert used and set(used) <= commands
    assert set(re.findall(r"\bwanotify\s+publish\s+([\w.]+)", script)) <= {"member.registered", "payment.link_created"}


def test_consumers_start_after_a_successful_migration_and_a_healthy_broker() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("notifier", "sender"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["rabbitmq"]["condition"] == "service_healthy", name
    assert services["rabbitmq"]["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_compose_mounts_the_ops_files_where_the_configs_expect_them() -> None:
    services = compose()["services"]

    def mounts(name: str) -> dict[str, str]:
        result = {}
        for volume in services[name]["volumes"]:
            source, target = volume.split(":")[:2]
            result[target] = source
        return result

    rabbit = mounts("rabbitmq")
    assert rabbit["/etc/rabbitmq/rabbitmq.conf"] == "./ops/rabbitmq/rabbitmq.conf"
    assert rabbit["/etc/rabbitmq/enabled_plugins"] == "./ops/rabbitmq/enabled_plugins"
    assert rabbit["/etc/rabbitmq/definitions.json"] == "./ops/rabbitmq/definitions.json"
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    prometheus = mounts("prometheus")
    assert prometheus["/etc/prometheus"] == "./ops/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    grafana = mounts("grafana")
    assert grafana["/etc/grafana/provisioning"] == "./ops/grafana/provisioning"
    provider_path = load_yaml(DASHBOARD_PROVIDER_YML)["providers"][0]["options"]["path"]
    assert grafana[provider_path] == "./ops/grafana/dashboards"
    datasource = urlsplit(load_yaml(DATASOURCE_YML)["datasources"][0]["url"])
    assert (datasource.hostname, datasource.port) == ("prometheus", 9090)
    env = services["grafana"]["environment"]
    assert (env["GF_AUTH_ANONYMOUS_ENABLED"], env["GF_AUTH_ANONYMOUS_ORG_ROLE"]) == ("true", "Viewer")
    declared = set(compose()["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                assert source in declared, f"{name}: volume {source} is not declared"
            else:
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def test_the_dockerfile_installs_the_package_as_a_non_root_user_with_the_cli_entrypoint() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(line.startswith("RUN pip install .") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["wanotify"]' in lines
