"""The wheel `pip install .` builds carries every data file the code opens."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_the_review_page_and_the_bundled_model(tmp_path):
    source = tmp_path / "source"  # a copy: setuptools builds inside the source folder
    for name in ("altvoice", "model", "pipelines", "transforms"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True, cwd=tmp_path)
    names = set(zipfile.ZipFile(next(tmp_path.glob("altvoice-*.whl"))).namelist())
    assert {f"altvoice/review_page/{n}" for n in ("index.html", "review.js", "review.css")} <= names
    assert {"altvoice/model/pretrained/model_card.json", "altvoice/model/pretrained/backbone.tflite",
            "altvoice/model/pretrained/image_prior.npy"} <= names
