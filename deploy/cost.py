"""What a caption job costs on Dataflow, from the CPU-seconds per photo measured on this machine.

    python deploy/cost.py [--results bench/results/caption_vs_plain_loop_piper.json] [--vcpu-speed 0.5]
                          [--machine-vcpus 4 --machine-gb 15 --disk-gb 50] [--workers 20] [--audio wav|mp3]

The job's CPU-seconds per photo and how busy it keeps its cores (CPU-seconds over wall seconds
times cores, start-up included) come from bench/caption_throughput.py's results. A Dataflow vCPU
is taken to do `--vcpu-speed` of a core here (0.5: an n1 vCPU is one hyperthread of an older
Xeon); check both with a pilot run and pass what it shows. Prices are us-central1 list prices as
published in 2024 (this machine is offline: verify them before quoting); each is a flag.
"""
import argparse
import json
import os
import statistics
import sys
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "..", "bench", "results", "caption_vs_plain_loop_piper.json")
OUTPUT_KIB = {"wav": 109.0, "mp3": 10.0}  # audio per photo (47 characters of alt text on average)
RECORD_KIB = 0.4  # the JSON record


class Prices(NamedTuple):
    vcpu_hour: float = 0.056  # Dataflow batch
    gb_hour: float = 0.003557  # worker memory
    disk_gb_hour: float = 0.000054  # standard persistent disk
    class_a: float = 0.005 / 1000  # Cloud Storage writes
    class_b: float = 0.0004 / 1000  # Cloud Storage reads
    gb_month: float = 0.020  # Cloud Storage Standard


class Worker(NamedTuple):
    vcpus: int = 4  # n1-standard-4: one SDK process per vCPU
    memory_gb: float = 15.0
    disk_gb: float = 50.0

    def hourly(self, prices: Prices) -> float:
        return self.vcpus * prices.vcpu_hour + self.memory_gb * prices.gb_hour + self.disk_gb * prices.disk_gb_hour


def measured(results_file: str) -> tuple[float, float]:
    """(CPU-seconds per photo, utilisation) of the caption job in a bench results file: its runs' medians."""
    with open(results_file) as f:
        results = json.load(f)
    cpu = statistics.median(r["cpu_s"] for r in results["runs"]["job"])
    wall = statistics.median(r["wall_s"] for r in results["runs"]["job"])
    return cpu / results["images"], cpu / (wall * results["cpus"])


def photos_per_worker_hour(cpu_s_per_photo: float, utilisation: float, vcpu_speed: float, worker: Worker) -> float:
    return 3600 * worker.vcpus * utilisation * vcpu_speed / cpu_s_per_photo


def per_photo(cpu_s_per_photo: float, utilisation: float, vcpu_speed: float, worker: Worker, prices: Prices,
              audio: str) -> dict:
    """Dollars per photo: Dataflow compute, Cloud Storage writes (record + audio) and reads (the image and
    the record checked for change detection), and storage of the outputs for a month."""
    rate = photos_per_worker_hour(cpu_s_per_photo, utilisation, vcpu_speed, worker)
    return {"compute": worker.hourly(prices) / rate, "writes": 2 * prices.class_a, "reads": 2 * prices.class_b,
            "storage_month": (OUTPUT_KIB[audio] + RECORD_KIB) / (1 << 20) * prices.gb_month}


def report(cpu_s_per_photo: float, utilisation: float, vcpu_speed: float, worker: Worker, prices: Prices,
           audio: str, workers: int) -> str:
    """The cost table (markdown) for 1,000, 1 million and 10 million photos."""
    rate = photos_per_worker_hour(cpu_s_per_photo, utilisation, vcpu_speed, worker)
    cost = per_photo(cpu_s_per_photo, utilisation, vcpu_speed, worker, prices, audio)
    sizes = (1_000, 1_000_000, 10_000_000)
    rows = [
        ("worker-hours", [f"{n / rate:.3g}" for n in sizes]),
        (f"wall time on {workers} workers (+ start-up)", ["", *(f"{n / rate / workers:.1f} h" for n in sizes[1:])]),
        (f"Dataflow compute (${worker.hourly(prices):.3f} a worker-hour)", [f"${n * cost['compute']:,.4g}" for n in sizes]),
        ("Storage writes (record + audio)", [f"${n * cost['writes']:,.4g}" for n in sizes]),
        ("Storage reads (image, record check)", [f"${n * cost['reads']:,.4g}" for n in sizes]),
        ("**total**", [f"**${n * (cost['compute'] + cost['writes'] + cost['reads']):,.4g}**" for n in sizes]),
        (f"outputs stored a month ({audio})", [f"${n * cost['storage_month']:,.4g}" for n in sizes]),
    ]
    lines = [f"{cpu_s_per_photo:.3f} CPU-s/photo here, {utilisation:.2f} of the cores busy, a vCPU = {vcpu_speed:g} "
             f"of a core here: {rate:,.0f} photos per worker-hour ({worker.vcpus} vCPUs)", "",
             "| | 1,000 photos | 1 million | 10 million |", "|---|---|---|---|"]
    lines += [f"| {name} | {' | '.join(values)} |" for name, values in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=RESULTS, help="bench/caption_throughput.py --plain-images results")
    parser.add_argument("--cpu-s-per-photo", type=float, help="instead of --results")
    parser.add_argument("--utilisation", type=float, default=None, help="with --cpu-s-per-photo (default 0.85)")
    parser.add_argument("--vcpu-speed", type=float, default=0.5)
    parser.add_argument("--machine-vcpus", type=int, default=Worker().vcpus)
    parser.add_argument("--machine-gb", type=float, default=Worker().memory_gb)
    parser.add_argument("--disk-gb", type=float, default=Worker().disk_gb)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--audio", choices=sorted(OUTPUT_KIB), default="wav")
    for name, default in Prices()._asdict().items():
        parser.add_argument(f"--{name.replace('_', '-')}-price", dest=name, type=float, default=default)
    args = parser.parse_args(argv)
    if args.cpu_s_per_photo:
        cpu_s, utilisation = args.cpu_s_per_photo, args.utilisation or 0.85
    else:
        cpu_s, utilisation = measured(args.results)
    prices = Prices(**{name: getattr(args, name) for name in Prices._fields})
    worker = Worker(args.machine_vcpus, args.machine_gb, args.disk_gb)
    print(report(cpu_s, utilisation, args.vcpu_speed, worker, prices, args.audio, args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
