"""Tiny random pipelines of both families, saved once per session, and small datasets."""

import json

import numpy as np
import pytest
from PIL import Image

from training.tiny import build_tiny_pipeline


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tiny")
    return {family: build_tiny_pipeline(family, root / family, seed=0) for family in ("unet", "dit")}


def write_image(path, seed: int, size=(80, 72)):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="session")
def pairs_folder(tmp_path_factory):
    """A preference export in the web app's layout: pairs.jsonl + images/ (4 pairs)."""
    root = tmp_path_factory.mktemp("pairs")
    lines = []
    for i in range(4):
        write_image(root / f"images/{i}w.png", seed=2 * i)
        write_image(root / f"images/{i}l.png", seed=2 * i + 1)
        lines.append({"prompt": f"a shape {i}", "winner": f"images/{i}w.png", "loser": f"images/{i}l.png"})
    (root / "pairs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


@pytest.fixture(scope="session")
def sft_folder(tmp_path_factory):
    """Captioned images in the imagefolder layout: metadata.jsonl (file_name, text)."""
    root = tmp_path_factory.mktemp("sft")
    lines = []
    for i in range(3):
        write_image(root / f"{i}.png", seed=100 + i)
        lines.append({"file_name": f"{i}.png", "text": f"picture {i}"})
    (root / "metadata.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root
