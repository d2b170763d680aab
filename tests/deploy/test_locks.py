"""Two lock files: requirements.lock is exactly the runtime closure of setup.py's requirements (what
Dataflow workers install); requirements-dev.lock holds the extras' tools; together they are the venv."""
import re
from pathlib import Path
from importlib.metadata import PackageNotFoundError, distribution, version

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]


def pins(name: str) -> dict:
    lines = (ROOT / name).read_text().splitlines()
    return {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in lines if "==" in line}


def setup_list(name: str) -> list[str]:
    text = (ROOT / "setup.py").read_text()
    return re.findall(r'"([^"]+==[^"]+)"', re.search(name + r" = \[(.*?)\n\]", text, re.S).group(1))


def closure(requirements: list[str]) -> set[str]:
    """Every installed distribution the requirements pull in (their extras and markers honoured)."""
    seen, todo = {}, [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen and set(req.extras) <= seen[name]:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue
        seen[name] = seen.get(name, set()) | set(req.extras)
        for spec in dist.requires or []:
            dep = Requirement(spec)
            if not dep.marker or any(dep.marker.evaluate({"extra": e}) for e in seen[name] | {""}):
                todo.append(dep)
    return set(seen) - {"pip", "setuptools", "wheel"}


def test_runtime_lock_is_the_closure_of_setup_requirements():
    assert set(pins("requirements.lock")) == closure(setup_list("REQUIRES"))


def test_dev_lock_holds_the_rest_and_everything_is_installed_at_its_pin():
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert not set(runtime) & set(dev)
    for name, pinned in {**runtime, **dev}.items():
        assert version(name) == pinned, name
