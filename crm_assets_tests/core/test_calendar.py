"""The calendar follows the data: any year without a setting, CRM_FIRST_MONTH as an override, clear errors outside it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from crm_assets.cli import generate
from crm_assets.core import landing

from ..cli.test_cli import one_line_error, run_cli
from ..conftest import TX_HEADER, lines, query, write


def first_key_in_a_fresh_process(folder, **env) -> str:
    """What the UI shows as the first partition: the definitions imported by a new process."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from crm_assets.definitions import defs; "
            "print(defs().resolve_job_def('crm_pipeline').partitions_def.get_partition_keys()[0])",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CRM_INPUT_DIR": str(folder), **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("start, end", [("1997-03", "1998-02"), ("2014-11", "2015-04")])
def test_data_of_any_year_runs_with_no_setting(tmp_path, start, end):
    folder = tmp_path / "input"
    generate.generate(folder, customers=40, start=start, end=end)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    assert "CRM_FIRST_MONTH" not in os.environ
    result = run_cli("run", "--input", str(folder), "--warehouse", str(warehouse))
    assert result.returncode == 0, result.stderr
    months = (int(end[:4]) - int(start[:4])) * 12 + int(end[5:]) - int(start[5:]) + 1
    assert f"{start}..{end} ({months} months)" in result.stdout
    built = query(
        warehouse,
        "SELECT min(report_month), max(report_month), count(DISTINCT report_month) FROM reporting.customer_snapshot",
    )
    assert [(a.isoformat()[:7], b.isoformat()[:7], n) for a, b, n in built] == [(start, end, months)]
    assert first_key_in_a_fresh_process(folder) == f"{start}-01"


def test_first_month_setting_overrides_the_data(input_dir):
    assert first_key_in_a_fresh_process(input_dir) == "2023-01-01"
    assert first_key_in_a_fresh_process(input_dir, CRM_FIRST_MONTH="2021-06") == "2021-06-01"
    one_line_error(run_cli("run", env_extra={"CRM_FIRST_MONTH": "June"}), "CRM_FIRST_MONTH=June is not a month")


def test_a_month_outside_the_calendar_names_it_and_the_way_to_widen_it(input_dir):
    result = run_cli("run", "--from", "2022-06")
    assert result.returncode == 2
    one_line_error(
        result,
        "--from 2022-06 is before the calendar 2023-01..",
        "first month of the data",
        "set CRM_FIRST_MONTH=YYYY-MM to widen it",
    )
    one_line_error(
        run_cli("run", "--to", "2999-01"),
        "--to 2999-01 is after the calendar 2023-01..",
        "a month is in it once it has ended",
    )


def test_an_explicit_to_past_the_data_says_so_and_warns(input_dir, warehouse_path):
    result = run_cli("run", "--to", "2023-03")
    assert result.returncode == 0, result.stderr
    assert "--to 2023-03 is after the data (the newest transaction is dated 2023-01-15" in result.stderr + result.stdout
    assert "raw/sales_transactions no_month_past_the_data (2 months)" in result.stdout
    default = run_cli("run")  # without --to: through the month of the newest line only
    assert default.returncode == 0 and "no_month_past_the_data" not in default.stdout


def test_the_calendar_reads_a_file_only_when_it_changed(input_dir, monkeypatch):
    calls = []
    real = landing.profile_file
    monkeypatch.setattr(landing, "profile_file", lambda path: calls.append(path.name) or real(path))
    first = landing.quick_profiles(input_dir)
    assert calls == ["sales_transactions_2023.csv"]
    assert landing.data_span(landing.quick_profiles(input_dir)) == landing.data_span(first)
    assert calls == ["sales_transactions_2023.csv"]  # the second look trusts the cache: same size, same time
    write(input_dir / "sales_transactions_2023.csv", lines(TX_HEADER, "A,C1,2022-12-15,P1,3,10,S1"))
    span = landing.data_span(landing.quick_profiles(input_dir))
    assert calls == ["sales_transactions_2023.csv"] * 2 and span[0].isoformat() == "2022-12-01"


def test_dropping_the_oldest_data_leaves_nothing_before_the_new_calendar(tmp_path):
    folder = tmp_path / "input"
    generate.generate(folder, customers=30, start="2023-10", end="2024-03")
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    args = ("run", "--input", str(folder), "--warehouse", str(warehouse))
    assert run_cli(*args).returncode == 0
    (folder / "sales_transactions_2023.csv").unlink()
    refused = run_cli(*args)
    assert refused.returncode == 2 and "sales_transactions_2023.csv is gone" in refused.stderr
    allowed = run_cli(*args, "--allow-removals")
    assert allowed.returncode == 0, allowed.stderr
    before_2024 = "SELECT count(*) FROM {} WHERE {} < DATE '2024-01-01'"
    for table, column in [
        ("raw.sales_transactions", "partition_month"),
        ("enriched.transactions", "partition_month"),
        ("features.customer_month_activity", "partition_month"),
        ("features.customer_features", "report_month"),
        ("reporting.customer_snapshot", "report_month"),
        ("reporting.segment_summary", "report_month"),
    ]:
        assert query(warehouse, before_2024.format(table, column)) == [(0,)], table
    assert query(
        warehouse, "SELECT count(*) FROM raw.file_loads WHERE source_file = 'sales_transactions_2023.csv'"
    ) == [(0,)]
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    "content", ["[]", "{}", '{"FOLDER": []}', '{"FOLDER": {"sales_transactions_2023.csv": "x"}}', "not json"]
)
def test_a_damaged_profile_cache_is_ignored(input_dir, content):
    cache = landing.ProfileCache(input_dir).path
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(content.replace("FOLDER", str(input_dir.resolve())))
    assert landing.data_span(landing.quick_profiles(input_dir))[0].isoformat() == "2023-01-01"
