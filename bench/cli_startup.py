"""How fast the `altvoice` command answers --help and --version (a benchmark, not a timed test).

    .venv/bin/python bench/cli_startup.py [--repeats 5]

Runs each command in a fresh process, side by side with the import it no longer needs
(`import tensorflow, apache_beam`), and reports median wall seconds.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

from common import save, table

COMMANDS = {
    "altvoice --help": ["-m", "altvoice.cli", "--help"],
    "altvoice caption --help": ["-m", "altvoice.cli", "caption", "--help"],
    "altvoice preprocess --help": ["-m", "altvoice.cli", "preprocess", "--help"],
    "altvoice --version": ["-m", "altvoice.cli", "--version"],
    "import tensorflow, apache_beam (what --help loaded before)": ["-c", "import tensorflow, apache_beam"],
}


def median_seconds(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *argv], check=True, capture_output=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {name: round(median_seconds(argv, args.repeats), 3) for name, argv in COMMANDS.items()}
    print(table([("command", "median s"), *results.items()]))
    print("wrote", save("cli_startup", {"repeats": args.repeats, "median_seconds": results}))


if __name__ == "__main__":
    main()
