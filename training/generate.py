"""Generate N images per prompt with fixed seeds and write the web app's import manifest.

Defaults follow the paper (§4.2): DDIM with 50 steps and classifier-free guidance, five
images per prompt. Image ``i`` of prompt ``p`` uses seed ``seed + p·N + i``, so any single
image can be regenerated alone. The output folder holds ``images/`` and
``manifest.jsonl`` in the format ``manage.py import_images`` reads (prompt, model, seed,
index, settings, image).
"""

import csv
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import DDIMScheduler
from tqdm.auto import tqdm

from training.generate_config import GenerateConfig
from training.models import load_pipeline
from training.options import GENERATE_OPTIONS
from training.pipelines import pipeline_family
from training.stopping import RunCancelled


class PromptFileError(ValueError):
    pass


class GenerationCancelled(RunCancelled):
    pass


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a .txt (one per line), a .jsonl (``prompt``) or a .csv (``prompt`` column)."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompt file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".jsonl":
        prompts = []
        for line, raw in enumerate(text.splitlines(), start=1):
            if raw.strip():
                try:
                    prompts.append(json.loads(raw)["prompt"])
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise PromptFileError(
                        f"{path.name}, line {line}: expected an object with 'prompt'"
                    ) from exc
    elif path.suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and "prompt" not in rows[0]:
            raise PromptFileError(f"{path.name}: no 'prompt' column")
        prompts = [row["prompt"] for row in rows]
    else:
        prompts = [line.strip() for line in text.splitlines()]
    prompts = [p.strip() for p in prompts if p and p.strip()]
    if not prompts:
        raise PromptFileError(f"{path} holds no prompt")
    return list(dict.fromkeys(prompts))


def default_guidance(family: str) -> float:
    """The classifier-free guidance scale of a model family (paper §4.2)."""
    return GENERATE_OPTIONS["guidance"].per_family[family]


def render_images(
    pipeline,
    family: str,
    prompts: list[str],
    seeds: list[int],
    steps: int,
    guidance: float,
    resolution: int | None = None,
    output_type: str = "pil",
):
    """One image per prompt, image i from a CPU generator seeded ``seeds[i]`` (so an image
    depends on its seed alone, not on the batch it is drawn in); PIL images, or the final
    latents with ``output_type="latent"``. The pipeline's own scheduler runs
    (:func:`generate` sets DDIM)."""
    generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
    # PixArt would snap the size to its aspect-ratio bins (256² for a tiny model); keep what was asked.
    extra = {"clean_caption": False, "use_resolution_binning": False} if family == "dit" else {}
    size = {"height": resolution, "width": resolution} if resolution else {}
    return pipeline(
        prompts,
        num_inference_steps=steps,
        guidance_scale=guidance,
        generator=generators,
        output_type=output_type,
        **size,
        **extra,
    ).images


def generate(
    config: GenerateConfig,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Write the images and ``manifest.jsonl``; returns the manifest's path.

    ``on_progress(done, total)`` is called after every batch; ``should_stop`` is polled
    before each one and, when true, ends the run with :class:`GenerationCancelled`.
    """
    family = pipeline_family(config.model)
    prompts = read_prompts(config.prompts)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipeline = load_pipeline(config.model).to(device)
    pipeline.scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    pipeline.set_progress_bar_config(disable=True)
    guidance = config.guidance if config.guidance is not None else default_guidance(family)
    name = config.model_name or Path(config.model).resolve().name
    out = Path(config.output_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    settings = {"scheduler": "ddim", "steps": config.steps, "guidance": guidance}
    if config.resolution:
        settings["resolution"] = config.resolution

    jobs = [(p, i) for p in range(len(prompts)) for i in range(config.images_per_prompt)]
    rows = []
    with tqdm(total=len(jobs), desc="generate", unit="image") as progress:
        for start in range(0, len(jobs), config.batch_size):
            if should_stop is not None and should_stop():
                raise GenerationCancelled(f"stopped on request after {start} of {len(jobs)} images")
            chunk = jobs[start : start + config.batch_size]
            seeds = [config.seed + p * config.images_per_prompt + i for p, i in chunk]
            images = render_images(
                pipeline,
                family,
                [prompts[p] for p, _ in chunk],
                seeds,
                config.steps,
                guidance,
                config.resolution,
            )
            for (p, i), seed, image in zip(chunk, seeds, images, strict=True):
                relative = f"images/{p:05d}-{i}.png"
                image.save(out / relative)
                rows.append(
                    {
                        "prompt": prompts[p],
                        "model": name,
                        "seed": seed,
                        "index": i,
                        "settings": settings,
                        "image": relative,
                    }
                )
            progress.update(len(chunk))
            if on_progress is not None:
                on_progress(len(rows), len(jobs))
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    (out / "generate_config.json").write_text(json.dumps(asdict(config), indent=2))
    return manifest
