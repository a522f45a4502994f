"""End to end: the real webserver and daemon, GraphQL, a backfill through the daemon, and the UI
in headless Chromium. Starts everything on a free loopback port and stops all it started."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import DagsterInstance

from crm_assets.cli import generate

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.sys.executable).parent
LAYERS = ("raw", "enriched", "features", "lifecycle", "rfmt", "reporting")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def dagster_services(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_instance.yaml", home / "dagster.yaml")
    generate.generate(root / "input", customers=200, start="2025-01", end="2025-06")
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        CRM_INPUT_DIR=str(root / "input"),
        CRM_WAREHOUSE=str(root / "warehouse" / "crm.duckdb"),
        CRM_OUTPUT_DIR=str(root / "output"),
    )
    # create the instance's SQLite storage once, before two processes race to create it
    DagsterInstance.local_temp(str(home)).dispose()
    port = free_port()
    logs = {name: open(root / f"{name}.log", "w") for name in ("webserver", "daemon")}
    processes = [
        subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=logs["webserver"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
        subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=ROOT,
            env=env,
            stdout=logs["daemon"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
    ]
    try:
        deadline = time.monotonic() + 120
        while True:  # ready when the code location has loaded its assets
            try:
                if graphql(port, "{ assetNodes { id } }")["assetNodes"]:
                    break
            except (OSError, AssertionError, KeyError):
                pass
            assert time.monotonic() < deadline, (root / "webserver.log").read_text()[-2000:]
            time.sleep(1)
        yield port, root
    finally:
        for proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for handle in logs.values():
            handle.close()


REPOSITORY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name location { name }
    jobs { name } schedules { name cronSchedule scheduleState { status } } sensors { name sensorState { status } }
} } } }
"""


def test_graphql_lists_assets_checks_schedule_and_sensor(dagster_services):
    port, _ = dagster_services
    nodes = graphql(port, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
    assert {"raw/sales_transactions", "features/customer_features", "reporting/customer_snapshot"} <= keys
    assert set(LAYERS) <= {n["groupName"] for n in nodes}
    checks = graphql(
        port,
        """{ assetNodeOrError(assetKey: {path: ["reporting", "customer_snapshot"]}) {
            ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } } }""",
    )["assetNodeOrError"]["assetChecksOrError"]["checks"]
    assert {"unique_customer_month", "m1_reconciles_with_lines"} <= {c["name"] for c in checks}
    assert all(c["blocking"] for c in checks)
    repo = graphql(port, REPOSITORY)["repositoriesOrError"]["nodes"][0]
    assert "crm_pipeline" in {j["name"] for j in repo["jobs"]}
    assert [(s["name"], s["cronSchedule"]) for s in repo["schedules"]] == [("monthly_refresh", "0 6 2 * *")]
    assert [s["name"] for s in repo["sensors"]] == ["input_files_sensor"]
    assert repo["schedules"][0]["scheduleState"]["status"] == "RUNNING"
    assert repo["sensors"][0]["sensorState"]["status"] == "RUNNING"


def test_partition_backfill_through_graphql_is_one_successful_run(dagster_services):
    port, root = dagster_services
    keys = [
        ["raw", "products"],
        ["raw", "customers"],
        ["raw", "sales_transactions"],
        ["enriched", "customers"],
        ["enriched", "transactions"],
        ["features", "customer_month_activity"],
        ["features", "repeated_orders"],
        ["features", "customer_features"],
        ["lifecycle", "customer_lifecycle"],
        ["rfmt", "customer_rfmt"],
        ["reporting", "customer_snapshot"],
    ]
    launched = graphql(
        port,
        """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {
            "params": {
                "partitionNames": ["2025-01-01", "2025-02-01", "2025-03-01"],
                "assetSelection": [{"path": k} for k in keys],
                "fromFailure": False,
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    deadline = time.monotonic() + 600
    while True:
        runs = graphql(
            port,
            """query($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
                ... on Runs { results { runId status tags { key value } } } } }""",
            {"id": backfill_id},
        )["runsOrError"]["results"]
        if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
            break
        assert time.monotonic() < deadline, runs
        time.sleep(3)
    assert all(r["status"] == "SUCCESS" for r in runs), (root / "daemon.log").read_text()[-3000:]
    tags = [{t["key"]: t["value"] for t in r["tags"]} for r in runs]
    monthly = [t for t in tags if "dagster/asset_partition_range_start" in t or "dagster/partition" in t]
    # the three months of every monthly asset are one run; the unpartitioned masters get their own run
    assert len(monthly) == 1 and len(runs) <= 2, tags
    assert (monthly[0]["dagster/asset_partition_range_start"], monthly[0]["dagster/asset_partition_range_end"]) == (
        "2025-01-01",
        "2025-03-01",
    )


def test_ui_shows_the_layers_in_headless_chromium(dagster_services, tmp_path):
    port, _ = dagster_services
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is required (installed by .ci/run)"
    url = f"http://127.0.0.1:{port}/asset-groups"
    common = [chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=30000", "--window-size=1600,1000"]
    dom = subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'profile1'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    text = " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style).*?</\1>", "", dom, flags=re.S)).split())
    assert "Global asset lineage" in text
    for layer in LAYERS:
        assert re.search(rf"\b{layer}\b", text), layer
    screenshot = tmp_path / "asset_graph.png"
    subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=180,
    )
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
