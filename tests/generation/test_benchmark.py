"""The GPU benchmark itself, run in-process on the tiny models: its report has every step and
targets."""

import json
import math

from django.core.files.storage import default_storage

from benchmarks import gpu_pipeline
from benchmarks.gpu_pipeline import STEPS, main

STEPS_WITHOUT_BARE_COUNTERPART = {"cut_out", "post_processing"}


def test_tiny_benchmark_times_every_step_of_ours_and_bare(tmp_path, capsys):
    out = tmp_path / "benchmark.json"
    report = main(["--tiny", "--repeats", "1", "--device", "cpu", "--json", str(out)])

    assert json.loads(out.read_text()) == report
    assert report["weights"].startswith("tiny") and report["resident_gpu_mib"] is None
    assert "shap-e" in report["backends"] and set(report["load_seconds"]) == {
        "text-to-image",
        *report["backends"],
    }
    assert all(seconds > 0 for seconds in report["load_seconds"].values())
    for name, result in report["backends"].items():
        assert set(result["steps"]) == set(STEPS), name
        assert all(row["ours"] > 0 for row in result["steps"].values())
        assert all(
            row["peak_gpu_mib"]["ours"] is None for row in result["steps"].values()
        )  # n/a on the CPU
        assert result["first_job_seconds"] > 0 and result["faces"] > 0
        assert 0 < result["preview_seconds"] < result["total"]["ours"]

    shap_e = report["backends"]["shap-e"]
    for step, row in shap_e["steps"].items():
        if step in STEPS_WITHOUT_BARE_COUNTERPART:
            assert row["bare"] is None and row["ratio"] is None
        else:
            assert row["bare"] > 0 and row["ratio"] == row["ours"] / row["bare"]
    ratio = shap_e["total"]["ratio"]
    assert isinstance(ratio, float) and math.isfinite(ratio) and ratio > 0
    assert len(shap_e["targets"]) == 3 and all(
        isinstance(target["met"], bool) for target in shap_e["targets"]
    )

    table = capsys.readouterr().out
    assert all(step in table for step in STEPS)
    assert "ours/bare" in table and "target Shap-E 3D job" in table


def test_django_storage_uploads_to_the_configured_storage_and_cleans_up(tmp_path):
    with gpu_pipeline._storage("django", tmp_path) as storage:
        storage.save("model.glb", b"glTF")
        (name,) = storage.names
        assert name.startswith("benchmark/") and default_storage.exists(name)
    assert not default_storage.exists(name)
