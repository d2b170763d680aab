"""Shared fixtures: a small Flickr8k-shaped dataset drawn by the tests, with bad inputs in it."""
import zipfile

import numpy as np
import pytest

from testdata import HOSTILE_NAMES, bad_images, caption_lines, encode, good_images, scene_image, with_grounding


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """A Flickr8k-shaped dataset: Images/ folder, Images.zip, captions, train/dev splits, a GloVe file."""
    root = tmp_path_factory.mktemp("dataset")
    images = {**good_images(), **bad_images()}
    folder = root / "Images"
    folder.mkdir()
    for name, data in images.items():
        (folder / name).write_bytes(data)
    with zipfile.ZipFile(root / "Images.zip", "w") as archive:
        for name, data in images.items():
            archive.writestr(f"Images/{name}", data)
        archive.writestr("../escape.jpg", images["red_1.jpg"])
    good = sorted(good_images())
    train = [n for n in good if n.endswith("_1.jpg") or "green" in n or "black" in n]
    dev = [n for n in good if n not in train]
    (root / "captions.txt").write_text("\n".join(caption_lines(good)) + "\n")
    (root / "train.txt").write_text("\n".join(train + list(bad_images()) + ["missing.jpg"]) + "\n")
    (root / "dev.txt").write_text("\n".join(dev) + "\n")
    rng = np.random.default_rng(0)
    words = "a red square on white wall box the is big blue circle in sky ball round grass green field".split()
    (root / "glove.txt").write_text(
        "".join(f"{w} {' '.join(f'{v:.4f}' for v in rng.normal(size=8))}\n" for w in words)
    )
    return {"root": root, "train": train, "dev": dev, "good": good}


@pytest.fixture(scope="session")
def tiny_model(dataset, tmp_path_factory):
    """A captioner exported by altvoice's own commands after a short training on the drawn dataset."""
    from altvoice.model import train
    from altvoice.pipelines import preprocess

    work, root = tmp_path_factory.mktemp("tiny_model"), dataset["root"]
    preprocess.run([
        "--captions", str(root / "captions.txt"), "--images", str(root / "Images"),
        "--train-split", str(root / "train.txt"), "--dev-split", str(root / "dev.txt"),
        "--output", str(work / "prep"), "--backbone", "mobilenet_v2", "--image-size", "32",
        "--backbone-weights", "none", "--min-word-count", "1", "--max-length", "12",
    ])
    train.run([
        "--data", str(work / "prep"), "--output", str(work / "train"), "--epochs", "2", "--batch-size", "16",
        "--units", "16", "--embedding-dim", "8", "--seed", "0",
    ])
    return work / "train" / "export"


@pytest.fixture
def tts_server():
    """A fresh local Cloud Text-to-Speech gRPC server for one test (see tts_server.py)."""
    from tests.altvoice.tts.tts_server import LocalTextToSpeechServer

    server = LocalTextToSpeechServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """A local GCS emulator (gcp-storage-emulator, in memory) with a bucket; gs:// paths reach it."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(tmp_path_factory.mktemp("gcs") / "emulator.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                               "--port", str(port), "--in-memory"], stdout=log, stderr=subprocess.STDOUT)
    patch = pytest.MonkeyPatch()
    patch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    patch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # gcsfs would probe over gRPC for a minute
    from apache_beam.internal.gcp import auth

    # Beam looks for Google credentials for ~30 s before going anonymous: answer "anonymous" at once.
    patch.setattr(auth._Credentials, "_credentials_init", True)
    patch.setattr(auth._Credentials, "_credentials", None)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="altvoice-test", credentials=AnonymousCredentials())
    for _ in range(100):
        try:
            client.create_bucket("altvoice-test")
            break
        except Exception:  # not listening yet
            time.sleep(0.1)
    yield "gs://altvoice-test"
    patch.undo()
    server.kill()
    log.close()


@pytest.fixture(scope="session")
def grounded_model(tiny_model, tmp_path_factory):
    """The tiny captioner with the bundled model's object classifier added, for grounded captions."""
    import shutil

    export = tmp_path_factory.mktemp("grounded") / "export"
    shutil.copytree(tiny_model, export)
    return with_grounding(export)


@pytest.fixture(scope="session")
def captioned(tmp_path_factory, grounded_model):
    """A real caption run (grounded tiny model, espeak) over good, hostile-named and corrupt images."""
    work = tmp_path_factory.mktemp("captioned")
    photos = work / "photos"
    (photos / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.jpg", "sub/b.png", *HOSTILE_NAMES]):
        image = scene_image((30 * i, 200 - 20 * i, 90), size=64 + 40 * i)
        (photos / name).write_bytes(encode(image, "JPEG" if name.endswith(".jpg") else "PNG"))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = work / "out"
    from altvoice import cli

    status = cli.main(["caption", "--input", str(photos), "--output", str(out), "--model", str(grounded_model),
                       "--tts", "espeak"])
    assert status == 3  # the broken photo failed, everything else was written
    return out


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    """Where the module's browser saves downloads."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(downloads):
    """A headless Chromium for the module's tests (tests/browser.py; mark them `needs_browser`)."""
    from browser import chrome

    with chrome(downloads) as driver:
        yield driver
