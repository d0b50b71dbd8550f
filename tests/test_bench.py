"""A tiny smoke version of the benchmark (the real one is `make bench`): it runs end to end and
reports every stage. Timings are not asserted: speed is measured, not tested."""

from __future__ import annotations

import json

from pipelines.bench import GROUPS, report_lines, run_bench


def test_bench_smoke(tmp_path):
    results = run_bench(tmp_path, formats=("parquet",), patients=40, months=2)
    (result,) = results
    assert result.transmissions > 0 and result.incremental_rows > 0
    assert set(result.full.stages_s) == set(GROUPS)
    assert result.full.peak_rss_mb > 0 and result.floor_s > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved[0]["fmt"] == "parquet"
    table = "\n".join(report_lines(results))
    assert "incremental night" in table and "× floor" in table
