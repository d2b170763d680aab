"""Shared fixtures: a small Flickr8k-shaped dataset drawn by the tests, with bad inputs in it."""
import zipfile

import numpy as np
import pytest

from testdata import bad_images, caption_lines, good_images


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
