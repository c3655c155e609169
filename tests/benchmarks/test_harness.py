"""The benchmark table computes ratios and verdicts correctly."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from harness import Row, Table, measure  # noqa: E402


def test_ratio_and_target():
    row = Row("r", peer=100.0, ours=160.0, unit="x/s", target=1.5)
    assert row.ratio == 1.6 and row.verdict == "ok" and row.goal == ">=1.5x"
    assert Row("r", peer=100.0, ours=140.0, unit="x/s", target=1.5).verdict == "MISS"
    assert Row("r", peer=100.0, ours=140.0, unit="x/s").verdict == ""


def test_lower_is_better_with_an_absolute_limit():
    row = Row("open", peer=3.0, ours=1.5, unit="ms", limit=50, lower_is_better=True)
    assert row.ratio == 2.0 and row.verdict == "ok" and row.goal == "<=50ms"
    assert (
        Row("open", peer=3.0, ours=60.0, unit="ms", limit=50, lower_is_better=True).verdict
        == "MISS"
    )


def test_measure_takes_the_median_and_table_prints(capsys):
    calls = []
    result = measure(lambda: calls.append(1), items=10, nbytes=1000, repeats=3, warmup=2)
    assert len(calls) == 5 and len(result.seconds) == 3
    assert result.items_per_s == 10 / result.median
    table = Table("t", "peer")
    table.header()
    table.add(Row("name", peer=1.0, ours=2.0, unit="u", target=1.5, note="n"))
    out = capsys.readouterr().out
    assert "== t ==" in out and "2.00x" in out and "ok  n" in out
