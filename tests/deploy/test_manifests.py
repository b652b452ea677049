"""deploy/: the Kubernetes objects, compose file, Grafana provisioning and image agree.

Each check is one an operator would otherwise learn about in production: a probe on the
wrong port, a second replica trading the same account, a dashboard query on a label the
daemon never sets, a config baked into a manifest that does not validate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from hedger.config import load_config
from hedger.obs.labels import GATE_REFUSALS, HEDGE_RESULTS, RELOAD_RESULTS
from tests.deploy.metric_refs import (
    CONTRACT,
    DASHBOARD,
    LABEL_VALUES,
    LABELS,
    TARGET_LABELS,
    alert_exprs,
    dashboard_exprs,
    family_of,
    grouping_labels_in,
    literal_values,
    metric_names_in,
    selectors_in,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def _k8s() -> dict[str, dict[str, Any]]:
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        objects[doc["kind"]] = doc
    return objects


def _pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = objects["Deployment"]["spec"]["template"]["spec"]
    return spec


def _container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (container,) = _pod(objects)["containers"]
    return dict(container)


K8S_VERSION = "1.33"  # these objects are stable APIs: newer API servers accept them too


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in sorted(K8S.glob("*.yaml"))
        if yaml.safe_load(p.read_text())["kind"] not in ("Kustomization", "ServiceMonitor")
    ],
    ids=lambda p: p.name,
)
def test_manifest_matches_the_kubernetes_schema(path: Path) -> None:
    """Strict: an unknown or misspelt field is an error, as ``kubectl apply`` would make it
    (the ServiceMonitor is a CRD and the Kustomization a kustomize file: not in the schema)."""
    kubernetes_validate.validate(yaml.safe_load(path.read_text()), K8S_VERSION, strict=True)


def test_one_daemon_per_account_replaced_not_rolled() -> None:
    spec = _k8s()["Deployment"]["spec"]
    # Two pods on one account would each hedge the other's hedges.
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_probes_hit_the_health_endpoints_on_the_served_port() -> None:
    objects = _k8s()
    container = _container(objects)
    (port,) = container["ports"]
    assert port["containerPort"] == 9184 and port["name"] == "http"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    # The port the probes hit is the one the mounted config binds, on all interfaces.
    config = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])
    assert config["http"]["port"] == 9184 and config["http"]["host"] == "0.0.0.0"


def test_runs_unprivileged_on_a_read_only_root() -> None:
    objects = _k8s()
    pod, container = _pod(objects), _container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user (Dockerfile)
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    # Everything the daemon writes is a mounted volume: the journal and /tmp.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/hedger"]["readOnly"] is True
    assert {"/var/lib/hedger", "/tmp"} <= set(mounts)


def test_the_configmap_config_validates_with_keys_from_the_secret(tmp_path: Path) -> None:
    objects = _k8s()
    volumes = {v["name"]: v for v in _pod(objects)["volumes"]}
    sources = volumes["config"]["projected"]["sources"]
    secret_items = next(s["secret"] for s in sources if "secret" in s)
    assert secret_items["name"] == objects["Secret"]["metadata"]["name"]
    mount = next(m for m in _container(objects)["volumeMounts"] if m["name"] == "config")
    # Lay the projected volume out under tmp_path, as the kubelet would under /etc/hedger.
    example = objects["Secret"]["stringData"]
    for item in secret_items["items"]:
        assert item["key"] in example, f"the Secret example lacks {item['key']}"
        target = tmp_path / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"canary-{item['key']}")
    text = objects["ConfigMap"]["data"]["config.yaml"].replace(mount["mountPath"], str(tmp_path))
    (tmp_path / "config.yaml").write_text(text)
    cfg = load_config(tmp_path / "config.yaml", env={})
    venue = next(iter(cfg.venues.values()))
    assert venue.api_key is not None and venue.api_key.get_secret_value() == "canary-api_key"
    assert cfg.journal.path.startswith("/var/lib/hedger/")  # on the PersistentVolumeClaim
    claim = volumes["journal"]["persistentVolumeClaim"]["claimName"]
    assert claim == objects["PersistentVolumeClaim"]["metadata"]["name"]


def test_service_and_servicemonitor_select_the_pod() -> None:
    objects = _k8s()
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = objects["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    monitor = objects["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["endpoints"][0]["path"] == "/metrics"


def test_kustomization_applies_everything_but_the_example_secret() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk - {"secret.example.yaml"}


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return doc


def test_compose_hedger_reaches_the_paper_venue_service(tmp_path: Path) -> None:
    services = _compose()["services"]
    venue_cmd = services["paper-venue"]["command"]
    port = venue_cmd[venue_cmd.index("--port") + 1]
    cfg = load_config(DEPLOY / "compose" / "hedger.yaml", env={})
    urls = cfg.venues["paper"].urls
    assert urls is not None
    assert urls.rest == f"http://paper-venue:{port}"
    assert urls.ws == f"ws://paper-venue:{port}/ws/api/v2"
    assert cfg.http.host == "0.0.0.0" and cfg.http.port == 9184
    hedger = services["hedger"]
    assert "./compose/hedger.yaml:/etc/hedger/config.yaml:ro" in hedger["volumes"]
    assert hedger["command"] == ["run", "--config", "/etc/hedger/config.yaml"]
    assert Path(cfg.journal.path).parent == Path("/var/lib/hedger")
    # Prometheus scrapes the service by its compose name and port.
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"hedger:{cfg.http.port}"]
    # Every published port stays on the host's loopback.
    for name, service in services.items():
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:"), (name, published)


def test_grafana_is_provisioned_with_the_dashboard_and_its_datasource() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert (
        mounts["./grafana/hedger.json"]
        == grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    )
    providers = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "hedger.yml").read_text()
    )
    folder = providers["providers"][0]["options"]["path"]
    assert Path(mounts["./grafana/hedger.json"]).parent == Path(folder)
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (source,) = datasources["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    dashboard = json.loads(DASHBOARD.read_text())
    used = {
        json.dumps(panel["datasource"], sort_keys=True)
        for panel in dashboard["panels"]
        if "datasource" in panel and panel["type"] != "row"
    }
    assert used == {json.dumps({"type": "prometheus", "uid": source["uid"]}, sort_keys=True)}


def _dashboard_queries() -> list[tuple[str, str]]:
    return [(title, expr) for title, expr in dashboard_exprs() if expr]


def _assert_contract_metrics_and_labels(title: str, expr: str) -> None:
    names = {family_of(name) for name in metric_names_in(expr)}
    assert names, f"{title}: no hedger metric in {expr}"
    assert names <= CONTRACT, f"{title}: not exported: {names - CONTRACT}"
    allowed = set().union(*(LABELS[name] for name in names)) | TARGET_LABELS
    for metric, label, op, value in selectors_in(expr):
        base = family_of(metric)
        if base == "up":  # Prometheus' own per-target series
            continue
        assert label in LABELS[base] | TARGET_LABELS | {"le"}, f"{title}: {metric}{{{label}}}"
        values, matched = LABEL_VALUES.get((base, label)), literal_values(op, value)
        if values is not None and matched is not None:
            never = matched - values
            assert not never, f"{title}: {metric}{{{label}{op}{value!r}}}: {never} never exported"
    assert grouping_labels_in(expr) <= allowed | {"le"}, f"{title}: groups by a missing label"


@pytest.mark.parametrize(("title", "expr"), _dashboard_queries())
def test_dashboard_queries_use_contract_metrics_and_labels(title: str, expr: str) -> None:
    _assert_contract_metrics_and_labels(title, expr)


@pytest.mark.parametrize(
    ("alert", "expr"),
    [pytest.param(a, e, id=a) for a, e in alert_exprs() if a != "HedgerDown"],
)
def test_alert_rules_use_contract_metrics_and_label_values(alert: str, expr: str) -> None:
    """An alert selecting a label value the daemon never exports can never fire (the order
    error alert matched "error" while the engine says "failed")."""
    _assert_contract_metrics_and_labels(alert, expr)


def _readme_metrics_table() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("### Metrics")
    return readme[start : readme.index("\n\n", readme.index("| metric |", start))]


def test_readme_metrics_table_is_the_contract() -> None:
    table = _readme_metrics_table()
    documented = set(re.findall(r"`(hedger_[a-z_]+)", table))
    assert documented == {name for name in CONTRACT if name.startswith("hedger_")}
    for metric, closed in (
        ("hedger_hedge_orders_total", HEDGE_RESULTS),
        ("hedger_config_reloads_total", RELOAD_RESULTS),
    ):
        row = next(line for line in table.splitlines() if f"`{metric}{{" in line)
        listed = row.rsplit("|", 2)[1].strip().removeprefix("result:").strip()
        assert tuple(listed.split(", ")) == closed, row
    row = next(line for line in table.splitlines() if "`hedger_guard_refusals_total{" in line)
    gates = row.split("by gate (", 1)[1].split(")", 1)[0]
    assert tuple(gates.split(", ")) == GATE_REFUSALS, row


def test_dashboard_covers_what_the_operations_issue_lists() -> None:
    used = {family_of(n) for _, e in dashboard_exprs() for n in metric_names_in(e)}
    expected = {
        "hedger_portfolio_beta",
        "hedger_portfolio_beta_delta",
        "hedger_target_beta_delta",
        "hedger_band_half_width",
        "hedger_asset_beta",
        "hedger_asset_beta_delta_usd",
        "hedger_portfolio_gamma",
        "hedger_portfolio_vega_usd",
        "hedger_portfolio_theta_usd",
        "hedger_hedge_orders_total",
        "hedger_hedge_notional_usd_total",
        "hedger_order_latency_seconds",
        "hedger_cycle_seconds",
        "hedger_market_data_age_seconds",
        "hedger_feed_reconnects_total",
        "hedger_guard_refusals_total",
        "hedger_trading_state",
    }
    assert expected <= used, expected - used


def test_image_is_non_root_exec_form_and_its_config_edit_still_applies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+", dockerfile, re.M)
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["hedger"\]$', dockerfile, re.M)  # exec form: PID 1
    assert re.search(r"^HEALTHCHECK ", dockerfile, re.M)
    # The build rewrites these two lines of config/paper.yaml; a reshaped line would make the
    # image build fail late, so catch it here.
    paper = (ROOT / "config" / "paper.yaml").read_text()
    assert re.search(r"^journal: \{path: [^}]*\}", paper, re.M)
    assert re.search(r"^http: \{host: 127\.0\.0\.1, port: 9184,", paper, re.M)
