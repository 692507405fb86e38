"""The training loop: SFT, DPO or SimPO on a diffusers pipeline, built on ``accelerate``.

:func:`train` takes one :class:`~training.config.TrainConfig`; the CLI and the web app's
jobs both call it. The same code runs on one CPU, one GPU, or many GPUs under
``accelerate launch`` (each process takes its share of every batch).

What a run writes under ``output_dir``:

- ``metrics.jsonl``: one line per optimizer step (loss, latent and pixel parts, implicit
  accuracy with ties as half, share of saturated pairs, learning rate, samples/second);
- ``checkpoints/step-K/``: model, optimizer, LR schedule, EMA, RNG state and the
  resolved config, every ``checkpoint_every`` steps; ``resume`` continues from one with
  the same losses an uninterrupted run would have logged;
- ``final/``: a diffusers pipeline folder (the start model's other parts, byte for byte,
  with the trained denoiser) and ``final/evalhub_training.json`` (config, data hash,
  last metrics).

A non-finite loss stops the run with :class:`TrainingDiverged` naming the step; nothing is
written after it, so the last checkpoint stays the last good one.
"""

import copy
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from training.config import TrainConfig, resolved
from training.data import CaptionedImages, PreferencePairs, data_fingerprint
from training.losses import implicit_accuracy
from training.models import denoiser_of, load_pipeline, pipeline_family, text_conditioning, vae_scale_factor
from training.objective import StepModels, StepSettings, noise_pred, saturated_share, step_loss
from training.prediction import check_prediction_type

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TRAINING_RECORD = "evalhub_training.json"


class TrainingDiverged(RuntimeError):
    pass


class TrainingCancelled(RuntimeError):
    pass


@dataclass(frozen=True)
class TrainResult:
    final_model: Path
    steps: int
    data_hash: str
    metrics: dict
    config: TrainConfig


class EpochPermutation(Sampler):
    """A fresh permutation per epoch, seeded by (seed, epoch), starting ``start`` items in.

    Owning the order (instead of a global RNG) is what makes resume exact: the trainer
    sets ``epoch`` and ``start`` from the step it resumes at.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch, self.start = size, seed, 0, 0

    def __iter__(self):
        order = torch.randperm(
            self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        )
        return iter(order[self.start :].tolist())

    def __len__(self):
        return self.size - self.start


def _place(module: torch.nn.Module, device, dtype: torch.dtype) -> torch.nn.Module:
    # Casting only when the dtype changes keeps diffusers from warning on no-op casts.
    module.to(device)
    return module.to(dtype=dtype) if dtype != torch.float32 else module


def _collate(items: list[dict]) -> dict:
    batch = {"caption": [item["caption"] for item in items]}
    for key in ("winner", "loser", "image"):
        if key in items[0]:
            batch[key] = torch.stack([item[key] for item in items])
    return batch


def flip_together(pixels: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror item i of every group where ``flip[i]``: ``pixels`` is ``[k·B, 3, H, W]``
    (winners, then losers), ``flip`` is ``[B]``, so a pair is always flipped as one."""
    mask = flip.repeat(pixels.shape[0] // flip.shape[0]).reshape(-1, 1, 1, 1)
    return torch.where(mask, pixels.flip(-1), pixels)


def step_generator(seed: int, step: int, micro: int, process: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, step, micro, process]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def _checkpoints(output_dir: Path) -> list[Path]:
    found = [p for p in (output_dir / "checkpoints").glob("step-*") if (p / "training_state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def find_checkpoint(output_dir: Path, resume: str) -> Path:
    if resume == "latest":
        found = _checkpoints(output_dir)
        if not found:
            raise FileNotFoundError(f"resume=latest but {output_dir / 'checkpoints'} holds no checkpoint")
        return found[-1]
    path = Path(resume)
    if not (path / "training_state.json").is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint folder (no training_state.json)")
    return path


class _Run:
    """State of one run; :func:`train` is its public face."""

    def __init__(self, config: TrainConfig, should_stop: Callable[[], bool] | None):
        self.family = pipeline_family(config.model)
        self.config = config = resolved(config, self.family)
        self.should_stop = should_stop
        self.out = Path(config.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.accelerator = Accelerator(
            # torchrun on a machine without CUDA: accelerate only joins the gloo process group
            # when told it runs on CPUs.
            cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1,
            mixed_precision=config.mixed_precision,
            gradient_accumulation_plugin=GradientAccumulationPlugin(
                num_steps=config.gradient_accumulation_steps, sync_with_dataloader=False
            ),
            log_with="tensorboard" if config.tensorboard else None,
            project_config=ProjectConfiguration(
                project_dir=str(self.out), logging_dir=str(self.out / "logs")
            ),
        )
        torch.manual_seed(config.seed)  # LoRA's initial weights
        self.pipeline = load_pipeline(config.model)
        self.paired = config.method != "sft"
        dataset_cls = PreferencePairs if self.paired else CaptionedImages
        self.denoiser = denoiser_of(self.pipeline)
        vae = self.pipeline.vae
        self.resolution = config.resolution or self.denoiser.config.sample_size * vae_scale_factor(vae)
        self.dataset = dataset_cls(config.data, self.resolution)
        self.data_hash = data_fingerprint(config.data)
        self._prepare_models()
        self._prepare_optimization()

    # -- set-up -------------------------------------------------------------------------

    def _prepare_models(self):
        c, acc, pipe = self.config, self.accelerator, self.pipeline
        schedule = DDPMScheduler.from_config(pipe.scheduler.config)
        prediction_type = schedule.config.prediction_type
        check_prediction_type(prediction_type)
        weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(c.mixed_precision, torch.float32)
        vae_dtype = (
            torch.bfloat16
            if c.vae_dtype == "bf16" or (c.vae_dtype == "auto" and c.mixed_precision == "bf16")
            else torch.float32
        )
        _place(pipe.vae.requires_grad_(False).eval(), acc.device, vae_dtype)
        _place(pipe.text_encoder.requires_grad_(False).eval(), acc.device, weight_dtype)
        if c.vae_gradient_checkpointing:
            pipe.vae.enable_gradient_checkpointing()
        denoiser = self.denoiser
        reference = None
        if c.lora_rank:
            from diffusers.training_utils import cast_training_params

            # The frozen base can sit in the mixed-precision dtype; the adapters train in fp32.
            _place(denoiser.requires_grad_(False), acc.device, weight_dtype)
            denoiser.add_adapter(_lora_config(c))
            cast_training_params(denoiser, dtype=torch.float32)
        elif c.method == "dpo":
            reference = _place(copy.deepcopy(denoiser).requires_grad_(False).eval(), acc.device, weight_dtype)
        if c.gradient_checkpointing:
            denoiser.enable_gradient_checkpointing()
        denoiser.to(acc.device).train()
        additional = bool(getattr(denoiser, "use_additional_conditions", False))
        self.models = StepModels(
            denoiser=denoiser,
            vae=pipe.vae,
            family=self.family,
            alphas_cumprod=schedule.alphas_cumprod.to(acc.device),
            prediction_type=prediction_type,
            image_size=(self.resolution, self.resolution),
            additional_conditions=additional,
        )
        if c.method == "dpo":
            self.models.reference = self._reference_fn(reference)
        self.settings = StepSettings.from_config(c)

    def _reference_fn(self, reference):
        models = self.models

        def with_copy(z_t, t, text):
            ab = models.alphas_cumprod[t].float()
            return noise_pred(models, reference, z_t, t, text, ab)

        def with_adapters_off(z_t, t, text):
            # With LoRA, the reference is the base model: the same weights, adapters off.
            base = self.accelerator.unwrap_model(models.denoiser)
            ab = models.alphas_cumprod[t].float()
            base.disable_adapters()
            try:
                return noise_pred(models, models.denoiser, z_t, t, text, ab)
            finally:
                base.enable_adapters()

        return with_copy if reference is not None else with_adapters_off

    def _prepare_optimization(self):
        c, acc = self.config, self.accelerator
        self.params = [p for p in self.denoiser.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(self.params, lr=c.learning_rate, weight_decay=c.weight_decay)
        self.sampler = EpochPermutation(len(self.dataset), c.seed)
        loader = DataLoader(
            self.dataset,
            batch_size=c.batch_size,
            sampler=self.sampler,
            num_workers=c.dataloader_workers,
            collate_fn=_collate,
        )
        schedule_name = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}[
            c.lr_schedule
        ]
        lr_schedule = get_scheduler(
            schedule_name,
            optimizer=optimizer,
            num_warmup_steps=c.lr_warmup_steps * acc.num_processes,
            num_training_steps=c.max_steps * acc.num_processes,
        )
        denoiser, self.optimizer, self.loader, self.lr_schedule = acc.prepare(
            self.denoiser, optimizer, loader, lr_schedule
        )
        self.models.denoiser = denoiser
        self.ema = None
        if c.ema_decay is not None:
            from diffusers.training_utils import EMAModel

            self.ema = EMAModel(self.params, decay=c.ema_decay)
            self.ema.to(acc.device)
            acc.register_for_checkpointing(self.ema)

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> TrainResult:
        c, acc = self.config, self.accelerator
        start = self._resume() if c.resume else 0
        self.metrics_file = self._open_metrics(start)
        if c.tensorboard:
            acc.init_trackers("evalhub", config={k: v for k, v in c.to_dict().items() if v is not None})
        step, last = start, {}
        per_epoch = len(self.loader)
        consumed = start * c.gradient_accumulation_steps
        epoch, skip = divmod(consumed, per_epoch) if per_epoch else (0, 0)
        progress = tqdm(
            total=c.max_steps, initial=start, disable=not acc.is_local_main_process, desc=c.method
        )
        window, micro, started = [], 0, time.perf_counter()
        while step < c.max_steps:
            self.sampler.epoch = epoch
            self.sampler.start = skip * c.batch_size * acc.num_processes
            skip = 0
            for batch in self.loader:
                with acc.accumulate(self.models.denoiser):
                    loss = self._micro_step(batch, step, micro)
                    window.append(loss)
                    acc.backward(loss.total)
                    grad_norm = None
                    if acc.sync_gradients and c.max_grad_norm:
                        grad_norm = acc.clip_grad_norm_(self.params, c.max_grad_norm)
                    self.optimizer.step()
                    self.lr_schedule.step()
                    self.optimizer.zero_grad(set_to_none=True)
                micro += 1
                if not acc.sync_gradients:
                    continue
                step += 1
                if self.ema is not None:
                    self.ema.step(self.params)
                elapsed = time.perf_counter() - started
                samples = len(window) * c.batch_size * acc.num_processes
                last = self._log(step, epoch, window, grad_norm, samples / elapsed)
                progress.update(1)
                progress.set_postfix(loss=f"{last['loss']:.4g}")
                window, micro, started = [], 0, time.perf_counter()
                if c.checkpoint_every and step % c.checkpoint_every == 0 and step < c.max_steps:
                    self._save_checkpoint(step)
                if self.should_stop is not None and self.should_stop():
                    self._save_checkpoint(step)
                    raise TrainingCancelled(f"stopped on request after step {step}")
                if step >= c.max_steps:
                    break
            self.sampler.start = 0
            epoch += 1
        progress.close()
        final = self._save_final(step, last)
        acc.end_training()
        return TrainResult(final_model=final, steps=step, data_hash=self.data_hash, metrics=last, config=c)

    def _micro_step(self, batch: dict, step: int, micro: int):
        c, acc = self.config, self.accelerator
        generator = step_generator(c.seed, step, micro, acc.process_index)
        captions = list(batch["caption"])
        drop = torch.rand(len(captions), generator=generator) < c.empty_prompt_prob
        captions = ["" if d else text for d, text in zip(drop.tolist(), captions, strict=True)]
        if self.paired:
            pixels = torch.cat([batch["winner"], batch["loser"]])
        else:
            pixels = batch["image"]
        if c.random_flip:
            pixels = flip_together(pixels, torch.rand(len(captions), generator=generator) < 0.5)
        text = text_conditioning(self.pipeline, captions, acc.device)
        with acc.autocast():
            loss = step_loss(self.models, self.settings, pixels.to(acc.device), text, generator, self.paired)
        finite = torch.isfinite(loss.total.detach()).float()
        if acc.reduce(finite, reduction="min").item() < 1:
            self._diverged(step + 1, loss)
        return loss

    def _diverged(self, step: int, loss):
        found = _checkpoints(self.out)
        keep = f"the last good checkpoint is {found[-1]}" if found else "no checkpoint had been written"
        message = f"loss became {loss.total.item()} at step {step}; stopped, {keep}"
        if self.accelerator.is_main_process:
            self.metrics_file.write(
                json.dumps({"step": step, "event": "diverged", "message": message}) + "\n"
            )
            self.metrics_file.flush()
        raise TrainingDiverged(message)

    # -- records --------------------------------------------------------------------------

    def _log(self, step, epoch, window, grad_norm, samples_per_s) -> dict:
        acc = self.accelerator

        def mean(values):
            return acc.reduce(torch.stack(values).detach().float(), reduction="mean").mean().item()

        record = {"step": step, "epoch": epoch, "loss": mean([w.total for w in window])}
        for part in ("latent", "pixel"):
            if getattr(window[0], part) is not None:
                record[f"{part}_loss"] = mean([getattr(w, part) for w in window])
        if window[0].margins:
            for part in window[0].margins:
                margins = acc.gather(torch.cat([w.margins[part] for w in window]))
                logits = acc.gather(torch.cat([w.logits[part] for w in window]))
                record[f"implicit_acc_{part}"] = implicit_accuracy(margins).item()
                record[f"saturated_{part}"] = saturated_share(logits).item()
            first = "latent" if "latent" in window[0].margins else "pixel"
            record["implicit_acc"] = record[f"implicit_acc_{first}"]
        record["lr"] = self.lr_schedule.get_last_lr()[0]
        if grad_norm is not None:
            record["grad_norm"] = float(grad_norm)
        record["samples_per_s"] = samples_per_s
        if acc.is_main_process:
            self.metrics_file.write(json.dumps(record) + "\n")
            self.metrics_file.flush()
        if self.config.tensorboard:
            acc.log({k: v for k, v in record.items() if k != "step"}, step=step)
        return record

    def _open_metrics(self, start: int):
        path = self.out / "metrics.jsonl"
        kept = []
        if start and path.is_file():
            # A resumed run replaces what the interrupted one logged after its checkpoint.
            kept = [
                line
                for line in path.read_text().splitlines()
                if line and json.loads(line).get("step", 0) <= start
            ]
        if not self.accelerator.is_main_process:
            return None
        handle = path.open("w")
        handle.writelines(line + "\n" for line in kept)
        handle.flush()
        return handle

    def _save_checkpoint(self, step: int):
        acc = self.accelerator
        folder = self.out / "checkpoints" / f"step-{step}"
        acc.wait_for_everyone()
        acc.save_state(str(folder))
        if acc.is_main_process:
            state = {"step": step, "config": self.config.to_dict(), "data_hash": self.data_hash}
            (folder / "training_state.json").write_text(json.dumps(state, indent=2))
            for old in _checkpoints(self.out)[: -self.config.checkpoints_keep]:
                shutil.rmtree(old)

    def _resume(self) -> int:
        folder = find_checkpoint(self.out, self.config.resume)
        state = json.loads((folder / "training_state.json").read_text())
        self.accelerator.load_state(str(folder))
        return int(state["step"])

    def _merged_lora(self, trained, subfolder: str):
        """The start model's denoiser, freshly loaded in fp32, with the trained adapters fused
        in: the base weights keep their full precision even if training held them in bf16."""
        from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

        adapters = get_peft_model_state_dict(trained)
        merged = type(trained).from_pretrained(self.config.model, subfolder=subfolder)
        merged.add_adapter(_lora_config(self.config))
        set_peft_model_state_dict(merged, {k: v.float().cpu() for k, v in adapters.items()})
        merged.fuse_lora()
        merged.unload_lora()
        return merged

    def _save_final(self, step: int, metrics: dict) -> Path:
        acc = self.accelerator
        acc.wait_for_everyone()
        final = self.out / "final"
        if not acc.is_main_process:
            return final
        denoiser = acc.unwrap_model(self.models.denoiser)
        if self.ema is not None:
            self.ema.copy_to(self.params)
        subfolder = "unet" if self.family == "unet" else "transformer"
        if self.config.lora_rank:
            denoiser = self._merged_lora(denoiser, subfolder)
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(self.config.model, final, ignore=shutil.ignore_patterns(subfolder))
        denoiser.save_pretrained(final / subfolder)
        record = {
            "config": self.config.to_dict(),
            "family": self.family,
            "base_model": str(Path(self.config.model).resolve()),
            "data_hash": self.data_hash,
            "steps": step,
            "final_metrics": metrics,
        }
        (final / TRAINING_RECORD).write_text(json.dumps(record, indent=2))
        return final


def _lora_config(c: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=c.lora_rank, lora_alpha=c.lora_alpha, init_lora_weights="gaussian", target_modules=LORA_TARGETS
    )


def train(config: TrainConfig, *, should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Run ``config`` to the end; returns where the final model is and its last metrics.

    ``should_stop`` is polled after every optimizer step (the web app's cancel button); when
    it answers true the run writes a checkpoint and raises :class:`TrainingCancelled`.
    """
    try:
        return _Run(config, should_stop).run()
    finally:
        # accelerate keeps process-wide singletons; a worker that runs several jobs needs a
        # fresh state per run (another run may ask for another precision). The distributed
        # set-up (PartialState) stays.
        AcceleratorState._reset_state()
        GradientState._reset_state()
