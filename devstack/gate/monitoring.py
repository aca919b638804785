"""Checks of the monitoring component (k8s/monitoring): alert rules, their tests, the dashboard.

- `promtool check rules` and `promtool test rules` (Prometheus's own parser and rule engine, pinned
  and built with `go install` into .cache/ by `make tools`) on the PrometheusRule's groups;
- the Grafana dashboard: every query parsed as PromQL, the metrics it uses listed (to compare with
  a running collector's /metrics), and the dashboard held to the rules of Grafana's
  dashboard-linter. That linter has no release on the Go module proxy, so its rules for
  Prometheus dashboards are restated here, with the same names.

`python -m devstack.gate.monitoring` runs every check that needs no running collector.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from devstack.go_tools import PROMTOOL
from devstack.proc import ROOT

MONITORING_DIR = ROOT / "k8s" / "monitoring"
RULES_FILE = MONITORING_DIR / "prometheusrule.yaml"
DASHBOARD_FILE = MONITORING_DIR / "dashboard.json"
RULE_TESTS_FILE = ROOT / "tests" / "deploy" / "alerts.test.yaml"

# What Grafana substitutes in queries, with values that keep the PromQL valid for parsing.
_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": "collector",
    "$instance": "pod:8000",
}
_RANGE_FUNCTIONS = frozenset({"rate", "irate", "increase"})


def promtool_binary() -> Path:
    """The pinned promtool (`make tools` builds it: several minutes the first time)."""
    return PROMTOOL.binary()


def rule_groups(rules_file: Path = RULES_FILE) -> dict[str, Any]:
    """The PrometheusRule's `spec`: a Prometheus rule file's content (`groups`)."""
    manifest = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    if manifest.get("kind") != "PrometheusRule":
        raise ValueError(f"{rules_file} is not a PrometheusRule")
    spec: dict[str, Any] = manifest["spec"]
    return spec


def alert_names(rules_file: Path = RULES_FILE) -> list[str]:
    """Every alert the PrometheusRule defines."""
    return [
        rule["alert"]
        for group in rule_groups(rules_file)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def _promtool(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool_binary()), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def check_rules(rules_file: Path = RULES_FILE) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` on the PrometheusRule's groups (with its linter on)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(yaml.safe_dump(rule_groups(rules_file)), encoding="utf-8")
        return _promtool(["check", "rules", "--lint=all", "--lint-fatal", "rules.yaml"], Path(tmp))


def run_rule_tests(
    rules_file: Path = RULES_FILE, tests_file: Path = RULE_TESTS_FILE
) -> subprocess.CompletedProcess[str]:
    """`promtool test rules`: the unit tests, run against the PrometheusRule's groups."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "rules.yaml").write_text(
            yaml.safe_dump(rule_groups(rules_file)), encoding="utf-8"
        )
        shutil.copy(tests_file, Path(tmp) / "alerts.test.yaml")
        return _promtool(["test", "rules", "alerts.test.yaml"], Path(tmp))


# --- the dashboard -------------------------------------------------------------------------------


def load_dashboard(path: Path = DASHBOARD_FILE) -> dict[str, Any]:
    """The dashboard's JSON model."""
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # inside collapsed rows


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    return [
        (str(panel.get("title")), str(target["expr"]))
        for panel in _panels(dashboard)
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def expand(query: str) -> str:
    """The query as Grafana would send it, with example values for its variables."""
    for name, value in sorted(_GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        query = query.replace("${" + name[1:] + "}", value).replace(name, value)
    return query


def parse(query: str) -> promql_parser.Expr:
    """The query's syntax tree (variables expanded); ValueError when it is not PromQL."""
    return promql_parser.parse(expand(query))


def _nodes(expr: promql_parser.Expr) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> bool:
        found.append(node)
        return True

    promql_parser.walk(expr, visit)
    return found


def metric_names(query: str) -> set[str]:
    """The metric names a query selects."""
    return {
        node.name
        for node in _nodes(parse(query))
        if isinstance(node, promql_parser.VectorSelector) and node.name
    }


def _regex_matchers(selector: Any) -> dict[str, str]:
    return {m.name: m.value for m in selector.matchers.matchers if m.op == promql_parser.MatchOp.Re}


def lint_dashboard(dashboard: dict[str, Any]) -> list[str]:
    """Problems found by the rules of Grafana's dashboard-linter for Prometheus dashboards."""
    problems: list[str] = []
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    # template-datasource-rule
    datasource = variables.get("datasource")
    if not datasource or datasource.get("type") != "datasource":
        problems.append("template-datasource-rule: no `datasource` variable of type datasource")
    elif datasource.get("query") != "prometheus":
        problems.append("template-datasource-rule: the `datasource` variable must be prometheus")
    # template-job-rule, template-instance-rule
    for name in ("job", "instance"):
        variable = variables.get(name)
        if variable is None:
            problems.append(f"template-{name}-rule: no `{name}` variable")
            continue
        if (variable.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append(f"template-{name}-rule: `{name}` must query `${{datasource}}`")
        if not (variable.get("multi") and variable.get("includeAll")):
            problems.append(f"template-{name}-rule: `{name}` must be multi-value with All")
    for key in ("uid", "title", "schemaVersion"):
        if not dashboard.get(key):
            problems.append(f"dashboard: `{key}` is missing")
    seen_ids: set[int] = set()
    cells: dict[tuple[int, int], str] = {}
    for panel in _panels(dashboard):
        title = str(panel.get("title") or "")
        where = f"panel {title or panel.get('id')!r}"
        if panel.get("type") == "row":
            continue
        # panel-title-description-rule
        if not title or not panel.get("description"):
            problems.append(f"panel-title-description-rule: {where} needs a title and description")
        # panel-datasource-rule
        if (panel.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append(f"panel-datasource-rule: {where} must use `${{datasource}}`")
        # panel-units-rule
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"panel-units-rule: {where} has no unit")
        panel_id = panel.get("id")
        if not isinstance(panel_id, int) or panel_id in seen_ids:
            problems.append(f"dashboard: {where} has a missing or repeated id")
        else:
            seen_ids.add(panel_id)
        problems += _grid_problems(panel, where, cells)
        targets = panel.get("targets", [])
        if not targets:
            problems.append(f"panel-query-rule: {where} has no query")
        for target in targets:
            problems += _target_problems(str(target.get("expr", "")), where)
    return problems


def _grid_problems(
    panel: dict[str, Any], where: str, cells: dict[tuple[int, int], str]
) -> list[str]:
    grid = panel.get("gridPos") or {}
    values = [grid.get(key) for key in ("x", "y", "w", "h")]
    if not all(isinstance(v, int) for v in values):
        return [f"dashboard: {where} has no complete gridPos"]
    x, y, w, h = (int(v) for v in values)  # type: ignore[arg-type]
    if x < 0 or w <= 0 or h <= 0 or x + w > 24:
        return [f"dashboard: {where} does not fit the 24-column grid"]
    for column in range(x, x + w):
        for row in range(y, y + h):
            other = cells.setdefault((column, row), where)
            if other != where:
                return [f"dashboard: {where} overlaps {other}"]
    return []


def _target_problems(query: str, where: str) -> list[str]:
    # target-promql-rule
    try:
        promql_parser.parse(expand(query))
    except ValueError as exc:
        return [f"target-promql-rule: {where}: {query!r} is not PromQL: {exc}"]
    problems: list[str] = []
    # target-job-rule, target-instance-rule: every selector filters by the variables.
    for node in _nodes(promql_parser.parse(query.replace("$__rate_interval", "5m"))):
        if isinstance(node, promql_parser.VectorSelector):
            matchers = _regex_matchers(node)
            for name in ("job", "instance"):
                if matchers.get(name) != f"${name}":
                    problems.append(
                        f'target-{name}-rule: {where}: {node.name} lacks {name}=~"${name}"'
                    )
    # target-rate-interval-rule
    for call in re.finditer(r"\b(rate|irate|increase)\s*\(", query):
        if call.group(1) in _RANGE_FUNCTIONS:
            rest = query[call.end() :]
            window = re.search(r"\[([^\]]*)\]", rest)
            if window is None or window.group(1) != "$__rate_interval":
                problems.append(f"target-rate-interval-rule: {where}: use [$__rate_interval]")
    return problems


def main() -> int:
    failures = 0
    for name, done in (
        ("promtool check rules", check_rules()),
        ("promtool test rules", run_rule_tests()),
    ):
        print(f"{name}: {'passed' if done.returncode == 0 else 'FAILED'}")
        if done.returncode != 0:
            print(done.stdout + done.stderr)
            failures += 1
    problems = lint_dashboard(load_dashboard())
    print(f"dashboard lint: {'passed' if not problems else 'FAILED'}")
    for problem in problems:
        print("  " + problem)
    return 1 if failures or problems else 0


if __name__ == "__main__":
    sys.exit(main())
