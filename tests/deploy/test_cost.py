"""The Dataflow cost arithmetic: from measured CPU-seconds per photo to dollars."""
import json

import pytest

from deploy.cost import Prices, Worker, main, measured, per_photo, photos_per_worker_hour


def test_a_worker_hour_is_vcpus_memory_and_disk():
    assert Worker().hourly(Prices()) == pytest.approx(4 * 0.056 + 15 * 0.003557 + 50 * 0.000054)


def test_photos_per_worker_hour_follow_cpu_seconds_utilisation_and_vcpu_speed():
    # 0.25 CPU-s a photo here, cores 80% busy, a vCPU half a core: 0.5 vCPU-s of work, 0.625 of wall
    assert photos_per_worker_hour(0.25, 0.8, 0.5, Worker(vcpus=4)) == pytest.approx(4 * 3600 / 0.625)
    cheap = per_photo(0.125, 0.8, 0.5, Worker(), Prices(), "mp3")
    dear = per_photo(0.25, 0.8, 0.5, Worker(), Prices(), "wav")
    assert dear["compute"] == pytest.approx(2 * cheap["compute"])
    assert dear["writes"] == cheap["writes"] == pytest.approx(2 * 0.005 / 1000)
    assert dear["storage_month"] > 10 * cheap["storage_month"]


def test_the_report_reads_the_median_job_run_of_a_bench_result(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"images": 100, "cpus": 2, "runs": {"job": [
        {"wall_s": 20.0, "cpu_s": 30.0}, {"wall_s": 25.0, "cpu_s": 25.0}, {"wall_s": 40.0, "cpu_s": 20.0}]}}))
    assert measured(str(results)) == pytest.approx((0.25, 25 / (25 * 2)))
    assert main(["--results", str(results), "--workers", "10"]) == 0
    table = capsys.readouterr().out
    rate = photos_per_worker_hour(0.25, 0.5, 0.5, Worker())
    assert f"{rate:,.0f} photos per worker-hour" in table
    compute = 1_000_000 / rate * Worker().hourly(Prices())
    assert f"${compute:,.4g}" in table and "10 million" in table
