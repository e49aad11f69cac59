"""Monitoring: Prometheus alert rules and their unit tests, scrape config, Grafana dashboard.

`promtool` (Debian's prometheus package, installed by scripts/install_tools.sh) checks the rules
and the config and runs deploy/prometheus/alerts_test.yml; the dashboard's queries go through
promtool's PromQL parser too. Every query may only name the metrics the worker exports.

A missing tool skips with the reason, except with CI=true, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS_PY = ROOT / ".cache" / "tools" / "venv" / "bin" / "python"
PROM = ROOT / "deploy" / "prometheus"
ALERTS = PROM / "alerts.yml"
ALERTS_TEST = PROM / "alerts_test.yml"
PROM_CONFIG = PROM / "prometheus.yml"
PROMETHEUS_RULE = ROOT / "deploy" / "k8s" / "base" / "prometheusrule.yaml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "newspipe.json"
IN_CI = os.environ.get("CI", "").lower() == "true"

# The worker's metrics (pipeline/metrics.py) and their labels. Fixed names: dashboards and alerts
# in other repositories depend on them.
COUNTERS = {
    "newspipe_records_in_total": {"stream", "source", "mode"},
    "newspipe_records_out_total": {"stream", "mode"},
    "newspipe_duplicates_total": {"stream", "kind", "mode"},
    "newspipe_dead_letters_total": {"stream", "code", "mode"},
    "newspipe_tags_total": {"stream", "topic"},
    "newspipe_state_rebuilds_total": {"stage"},
    "newspipe_forwarded_total": {"stream", "direction"},
    "newspipe_moderation_queued_total": {"stream"},
}
HISTOGRAMS = {
    "newspipe_stage_seconds": {"stage", "stream"},
    "newspipe_event_to_emit_seconds": {"stream"},
    "newspipe_batch_seconds": {"stage", "step"},
    "newspipe_gc_pause_seconds": {"generation"},
}
GAUGES = {
    "newspipe_consumer_lag": {"topic", "partition"},
    "newspipe_state_entries": {"table"},
    "newspipe_ready": set(),
    "newspipe_partition_stalled": {"topic", "partition"},
    "newspipe_worker_info": {"version"},
    "newspipe_table_lag": {"table"},
    "newspipe_table_age_seconds": {"table"},
    "newspipe_table_ready": {"table"},
    "newspipe_table_records": {"table"},
    "newspipe_table_bad_records": {"table"},
    "newspipe_moderation_rules_version": set(),
}
TARGET_LABELS = {"job", "instance"}
METRIC_LABELS: dict[str, set[str]] = {**COUNTERS, **GAUGES}
for _name, _labels in HISTOGRAMS.items():
    METRIC_LABELS[f"{_name}_bucket"] = _labels | {"le"}
    METRIC_LABELS[f"{_name}_sum"] = _labels
    METRIC_LABELS[f"{_name}_count"] = _labels
REQUIRED_ALERTS = {
    "NewspipeConsumerLagGrowing",
    "NewspipeNoOutput",
    "NewspipeDeadLetterRateHigh",
    "NewspipeWorkerNotReady",
    "NewspipePartitionStalled",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
KEYWORDS |= {"group_left", "group_right", "inf", "nan", "atan2"}


# --- helpers ------------------------------------------------------------------------------------


def missing_tool(what: str) -> None:
    message = f"{what} is not installed (run `bash scripts/install_tools.sh`)"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def load_yaml_file(path: Path) -> Any:
    """One YAML document. PyYAML from the project venv, else from the tools venv."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        if not TOOLS_PY.exists():
            missing_tool("PyYAML (tools venv)")
        script = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
        out = subprocess.run(
            [str(TOOLS_PY), "-c", script], input=path.read_text(), capture_output=True, text=True
        )
        assert out.returncode == 0, f"{path}: YAML did not parse:\n{out.stderr}"
        return json.loads(out.stdout)
    return yaml.safe_load(path.read_text())


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if not exe:
        missing_tool("promtool")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, cwd=PROM)


def promql_selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names in its matcher) for every vector selector of a PromQL query.

    A small scanner, not a parser: strings, durations and Grafana variables are blanked, then
    every identifier that is neither a function call, a keyword nor inside a grouping clause is a
    metric name. promtool checks the syntax separately.
    """
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = []
    pattern = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?\s*(\()?")
    for match in pattern.finditer(text):
        name, matchers, call = match.groups()
        if call or name in KEYWORDS:
            continue
        labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers or ""))
        found.append((name, labels))
    return found


def grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {g.strip() for g in group.split(",") if g.strip()}
    return labels


def check_query(expr: str, where: str, allowed_extra: frozenset[str] = frozenset()) -> None:
    """Every metric is one the worker exports; every label is one those metrics carry."""
    selectors = promql_selectors(expr)
    assert selectors, f"{where}: no metric in {expr!r}"
    known = set()
    for name, labels in selectors:
        if name in allowed_extra:
            known |= TARGET_LABELS
            continue
        assert name in METRIC_LABELS, f"{where}: unknown metric {name!r} in {expr!r}"
        bad = labels - METRIC_LABELS[name] - TARGET_LABELS
        assert not bad, f"{where}: {name} has no label(s) {sorted(bad)}"
        known |= METRIC_LABELS[name]
    bad = grouping_labels(expr) - known - TARGET_LABELS
    assert not bad, f"{where}: grouping by unknown label(s) {sorted(bad)} in {expr!r}"


def test_promql_scanner() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, stage) (rate(newspipe_stage_seconds_bucket"
        '{stream=~"$stream"}[$__rate_interval]))) > 1e3 and on (stage) up{job="x"} offset 5m'
    )
    assert promql_selectors(expr) == [
        ("newspipe_stage_seconds_bucket", {"stream"}),
        ("up", {"job"}),
    ]
    assert grouping_labels(expr) == {"le", "stage"}
    with pytest.raises(AssertionError, match="unknown metric"):
        check_query("rate(newspipe_records_total[5m])", "test")
    with pytest.raises(AssertionError, match="unknown label"):
        check_query("sum by (code) (rate(newspipe_records_out_total[5m]))", "test")


# --- alert rules --------------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml_file(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    out = promtool("check", "rules", str(ALERTS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in out.stdout


def test_promtool_test_rules() -> None:
    out = promtool("test", "rules", str(ALERTS_TEST))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_check_config() -> None:
    out = promtool("check", "config", str(PROM_CONFIG))
    assert out.returncode == 0, out.stdout + out.stderr


def test_required_alerts_exist_with_severity_and_duration() -> None:
    rules = alert_rules()
    names = {r.get("alert") for r in rules}
    assert REQUIRED_ALERTS <= names, f"missing alerts: {REQUIRED_ALERTS - names}"
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule.get("for"), f"{rule['alert']}: no `for`, it would fire on one bad scrape"
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alert_rules_use_only_exported_metrics() -> None:
    for rule in alert_rules():
        check_query(rule["expr"], rule.get("alert", rule.get("record", "?")), frozenset({"up"}))


def test_every_alert_has_a_firing_unit_test() -> None:
    tests = load_yaml_file(ALERTS_TEST)["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names <= firing, f"alerts never shown to fire: {names - firing}"
    assert names <= quiet, f"alerts never shown to stay quiet: {names - quiet}"


def test_prometheus_rule_crd_matches_alerts_yml() -> None:
    crd = load_yaml_file(PROMETHEUS_RULE)
    assert crd["apiVersion"] == "monitoring.coreos.com/v1" and crd["kind"] == "PrometheusRule"
    assert crd["spec"]["groups"] == load_yaml_file(ALERTS)["groups"], (
        "deploy/k8s/base/prometheusrule.yaml differs from deploy/prometheus/alerts.yml"
    )


# --- Grafana ------------------------------------------------------------------------------------


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) for every target."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's variables by values promtool accepts."""
    for var, value in {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m"}.items():
        expr = expr.replace(var, value)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def test_dashboard_parses_and_is_provisioned() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "newspipe" and dashboard["title"]
    ids = [p["id"] for p in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    provider = load_yaml_file(GRAFANA / "provisioning" / "dashboards" / "newspipe.yml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    datasource = load_yaml_file(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    assert datasource["datasources"][0]["type"] == "prometheus"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard_panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_queries_use_only_exported_metrics() -> None:
    queries = dashboard_queries()
    assert queries
    for title, expr in queries:
        check_query(expr, f"panel {title!r}")
    dashboard = json.loads(DASHBOARD.read_text())
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query)
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", text)
        if variable["type"] == "query":
            assert match, f"variable {variable['name']}: {text!r}"
            metric, label = match.groups()
            assert label in METRIC_LABELS[metric], f"variable {variable['name']}: {text!r}"


def test_dashboard_covers_the_pipeline() -> None:
    exprs = [expr for _, expr in dashboard_queries()]

    def has(pattern: str) -> bool:
        return any(re.search(pattern, e) for e in exprs)

    assert has(r"rate\(newspipe_records_in_total"), "throughput in"
    assert has(r"rate\(newspipe_records_out_total"), "throughput out"
    assert has(r"by \([^)]*kind[^)]*\) \(rate\(newspipe_duplicates_total"), "duplicates by kind"
    assert has(r"by \([^)]*code[^)]*\) \(rate\(newspipe_dead_letters_total"), "DLQ by code"
    for q in ("0.5", "0.99"):
        assert has(rf"histogram_quantile\({q}, .*newspipe_event_to_emit_seconds_bucket"), q
    assert has(r"newspipe_consumer_lag"), "lag"
    assert has(r"newspipe_state_entries"), "state size"
    assert has(r"topk\(\d+, .*newspipe_tags_total"), "top topics"
    assert has(r"newspipe_ready"), "readiness"


def test_dashboard_queries_parse_with_promtool(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)}
                    for i, (_, expr) in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.json"  # JSON is YAML
    path.write_text(json.dumps(rules))
    out = promtool("check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
