"""Validation samples: a fixed set of prompts rendered with fixed seeds while a run trains.

What diffusers' training examples call ``log_validation``: the same prompts and seeds at
step 0 (the start model), every ``validation_every`` steps and at the last step, so the
renders of two steps differ only by what training changed. They are written under the
run's folder, where the job page reads them::

    samples/prompts.json          {"prompts": [...], "seeds": [...], "steps": 20, "guidance": 7.5}
    samples/step-000010/00.png    prompt 0 at step 10, 01.png prompt 1, ...

and, with ``tensorboard``, logged as an image grid per step. The prompts are the
``validation_prompt_file``'s (the web app writes the study's prompts there) or else the
first distinct captions of the training data. Renders use DDIM with the family's guidance
(paper §4.2) and, with EMA, the averaged weights a final model would get.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler

from training.generate import default_guidance, read_prompts, render_images
from training.models import denoiser_of, vae_decode
from training.run_files import SAMPLE_PROMPTS_FILE, SAMPLES_DIR, sample_image_name, sample_step_dir


def samples_folder(output_dir: Path, step: int) -> Path:
    return output_dir / SAMPLES_DIR / sample_step_dir(step)


@dataclass(frozen=True)
class ValidationPlan:
    prompts: list[str]
    seeds: list[int]
    steps: int
    guidance: float
    every: int  # steps between renders; 0 = never

    def due(self, step: int, last: int) -> bool:
        """Whether step ``step`` (0 = before training) of a run of ``last`` steps renders."""
        return bool(self.every) and (step % self.every == 0 or step == last)

    def write(self, output_dir: Path) -> None:
        folder = output_dir / SAMPLES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "prompts": self.prompts,
            "seeds": self.seeds,
            "steps": self.steps,
            "guidance": self.guidance,
        }
        (folder / SAMPLE_PROMPTS_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def validation_plan(config, dataset, family: str, every: int) -> ValidationPlan:
    """The prompts, seeds and sampler settings of a run's renders (``config`` is its
    :class:`~training.config.TrainConfig`; seeds ``seed``, ``seed + 1``, ...)."""
    count = config.validation_prompts
    if not every:
        prompts = []
    elif config.validation_prompt_file:
        prompts = read_prompts(config.validation_prompt_file)[:count]
    else:
        prompts = _first_captions(dataset, count)
    return ValidationPlan(
        prompts=prompts,
        seeds=[config.seed + i for i in range(len(prompts))],
        steps=config.validation_steps,
        guidance=default_guidance(family),
        every=every if prompts else 0,
    )


def _first_captions(dataset, count: int) -> list[str]:
    """The first ``count`` distinct non-empty captions of ``dataset``, in its order."""
    found: dict[str, None] = {}
    for caption in dataset.captions:
        if caption.strip():
            found.setdefault(caption.strip())
        if len(found) == count:
            break
    return list(found)


@torch.no_grad()
def render_validation(pipeline, family: str, plan: ValidationPlan, resolution: int, autocast) -> list:
    """The plan's prompts rendered by ``pipeline`` as it is now (its denoiser in eval mode
    for the render, restored after), with DDIM in place of its training scheduler.

    The denoising runs under the run's ``autocast`` (the frozen parts sit in the mixed
    precision dtype); the VAE decodes outside it, in its own dtype, as in training: under
    fp16 autocast its activations overflow."""
    scheduler, denoiser = pipeline.scheduler, denoiser_of(pipeline)
    was_training = denoiser.training
    pipeline.scheduler = DDIMScheduler.from_config(scheduler.config)
    pipeline.set_progress_bar_config(disable=True)
    denoiser.eval()
    try:
        with autocast:
            latents = render_images(
                pipeline, family, plan.prompts, plan.seeds, plan.steps, plan.guidance, resolution, "latent"
            )
        with torch.autocast(latents.device.type, enabled=False):
            pixels = vae_decode(pipeline.vae, latents)  # the pipeline's latents are z·s, as training's
        return pipeline.image_processor.postprocess(pixels.float(), output_type="pil")
    finally:
        pipeline.scheduler = scheduler
        denoiser.train(was_training)


def save_validation(output_dir: Path, step: int, images: list) -> Path:
    folder = samples_folder(output_dir, step)
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        image.save(folder / sample_image_name(index))
    return folder


def images_array(images: list) -> np.ndarray:
    """``[N, H, W, 3]`` uint8, as TensorBoard's ``add_images(..., dataformats="NHWC")`` takes."""
    return np.stack([np.asarray(image.convert("RGB")) for image in images])
