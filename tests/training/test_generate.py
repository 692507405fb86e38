"""A trained model loads back, generates with fixed seeds, and its manifest imports (training.generate)."""

import json

import pytest
from PIL import Image

from training.cli import main
from training.config import TrainConfig
from training.generate import PromptFileError, read_prompts
from training.trainer import train


@pytest.fixture(scope="module")
def trained_dit(tiny_models, pairs_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    config = TrainConfig(
        model=str(tiny_models["dit"]),
        data=str(pairs_folder),
        output_dir=str(out),
        max_steps=1,
        validation_every=0,
    )
    return train(config).final_model


def generate_cli(model, prompts, out, *extra):
    """`python -m training generate ...`, in this process (the entry point itself is tested in test_cli)."""
    return main(
        [
            "generate",
            "--model",
            str(model),
            "--prompts",
            str(prompts),
            "--output-dir",
            str(out),
            "--steps",
            "2",
            "--images-per-prompt",
            "2",
            *extra,
        ]
    )


def test_saved_model_generates_seeded_images_and_a_manifest(trained_dit, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n\na blue square\na red circle\n")
    assert generate_cli(trained_dit, prompts, tmp_path / "out", "--model-name", "dit-simpo-1") == 0
    rows = [json.loads(line) for line in (tmp_path / "out/manifest.jsonl").read_text().splitlines()]
    assert [(r["prompt"], r["index"], r["seed"]) for r in rows] == [
        ("a red circle", 0, 0),
        ("a red circle", 1, 1),
        ("a blue square", 0, 2),
        ("a blue square", 1, 3),
    ]
    assert {r["model"] for r in rows} == {"dit-simpo-1"}
    assert rows[0]["settings"] == {"scheduler": "ddim", "steps": 2, "guidance": 4.5}
    for row in rows:
        with Image.open(tmp_path / "out" / row["image"]) as img:
            assert img.size == (64, 64)

    assert generate_cli(trained_dit, prompts, tmp_path / "again", "--model-name", "dit-simpo-1") == 0
    for row in rows:  # fixed seeds: the same pixels
        assert (tmp_path / "out" / row["image"]).read_bytes() == (
            tmp_path / "again" / row["image"]
        ).read_bytes()


@pytest.mark.django_db
def test_the_manifest_imports_into_the_catalog(tiny_models, tmp_path):
    from evalhub.catalog.image_import import generated_images_import
    from evalhub.catalog.image_sources import DirectorySource
    from evalhub.catalog.models import GeneratedImage
    from tests.factories import PromptFactory

    prompt = PromptFactory(text="a green triangle")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "a green triangle"}) + "\n")
    assert generate_cli(tiny_models["unet"], prompts, tmp_path / "out", "--model-name", "tiny-unet") == 0
    manifest = (tmp_path / "out/manifest.jsonl").read_text()
    imported = generated_images_import(
        prompt_set=prompt.prompt_set,
        manifest=manifest,
        source=DirectorySource(tmp_path / "out"),
        create_models=True,
    )
    assert imported.created == 2 and imported.models_created == ["tiny-unet"]
    assert GeneratedImage.objects.filter(prompt=prompt, model_version__name="tiny-unet").count() == 2


def test_prompt_files_in_each_format(tmp_path):
    (tmp_path / "p.csv").write_text("prompt,category\na cat,animals\na dog,animals\n")
    (tmp_path / "p.jsonl").write_text('{"prompt": "a cat"}\n{"prompt": "a dog"}\n')
    assert read_prompts(tmp_path / "p.csv") == read_prompts(tmp_path / "p.jsonl") == ["a cat", "a dog"]
    (tmp_path / "bad.jsonl").write_text('{"text": "a cat"}\n')
    with pytest.raises(PromptFileError, match="line 1"):
        read_prompts(tmp_path / "bad.jsonl")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(PromptFileError, match="no prompt"):
        read_prompts(tmp_path / "empty.txt")


def test_bad_options_exit_with_a_message(tiny_models, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("x\n")
    with pytest.raises(SystemExit) as exit_info:
        generate_cli(tiny_models["unet"], prompts, tmp_path / "o", "--batch-size", "0")
    assert exit_info.value.code == 2 and "batch_size must be at least 1" in capsys.readouterr().err
