"""The finishing benchmark, run as its README says on one small row, so that it keeps working."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_finishing_benchmark_times_each_step_of_both_paths(tmp_path):
    out = tmp_path / "finishing.json"
    command = [sys.executable, "benchmarks/finishing.py", "--backend", "silhouette"]
    command += ["--faces", "5000", "--repeats", "1", "--json", str(out)]

    printed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout

    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert (row["backend"], row["faces"]) == ("silhouette", 5000) and row["raw_faces"] > 5000
    finish = row["finish"]
    assert {"clean_up", "decimate", "unwrap", "bake", "export"} <= set(finish["steps"])
    assert (
        finish["steps"]["clean_up_again"]["new"] == 0 < finish["steps"]["clean_up_again"]["today"]
    )
    for figures in [*finish["steps"].values(), finish["total"], row["remesh"]["total"]]:
        assert figures["today"] > 0
    total = finish["total"]
    assert total["today/new"] == total["today"] / total["new"]
    assert report["targets"] == []  # targets are judged at 40,000 faces only
    assert "finish total" in printed and "today/new" in printed
