"""The training loop: SFT, DPO or SimPO on a diffusers pipeline, built on ``accelerate``.

:func:`train` takes one :class:`~training.config.TrainConfig`; the CLI and the web app's
jobs both call it. The same code runs on one CPU, one GPU, or many GPUs under
``accelerate launch`` (each process takes its share of every batch, and every random draw
follows the example rather than the process, so N processes train what one process of N
times the batch would: :mod:`training.sampling`).

What a run writes under ``output_dir``:

- ``metrics.jsonl``: a ``start`` line (what the data held and kept, the run's length,
  also printed), then one line per optimizer step (loss, latent and pixel parts, implicit
  accuracy with ties as half, share of saturated pairs, the model's and reference's errors
  on winners and losers, reward margin, learning rate, samples/second) and a ``samples``
  line per validation render;
- ``samples/``: the validation prompts rendered with fixed seeds before training, every
  ``validation_every`` steps and at the end (:mod:`training.validation`);
- ``checkpoints/step-K/``: model, optimizer, LR schedule, EMA, RNG state and the
  resolved config, every ``checkpoint_every`` steps; ``resume`` continues from one with
  the same losses an uninterrupted run would have logged, and refuses one written with
  other settings or data (:mod:`training.checkpoints`);
- ``final/``: a diffusers pipeline folder (the start model's other parts, byte for byte,
  with the trained denoiser) and ``final/evalhub_training.json`` (config, data hash,
  last metrics).

A non-finite loss or gradient norm stops the run with :class:`TrainingDiverged` naming
the step, before the optimizer applies that gradient; a checkpoint or final model is
written only when every trained weight is finite, so the last checkpoint named in the
error is a good one. (Under fp16 the gradient scaler owns non-finite gradients: it skips
such a step and lowers its scale, as mixed precision expects.)
"""

import copy
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration, gather_object
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from training.checkpoints import check_resumable, checkpoints_in, find_checkpoint, read_state, write_state
from training.config import ConfigError, TrainConfig, resolved
from training.data import CaptionedImages, PreferencePairs, data_fingerprint
from training.data_tables import ROW_GROUPS_CACHED
from training.losses import implicit_accuracy
from training.models import denoiser_of, resolution_multiple, text_conditioning, vae_scale_factor
from training.objective import StepModels, StepSettings, noise_pred, saturated_share, step_loss
from training.options import MAX_STEPS, steps_for_epochs, validation_interval
from training.pipelines import DENOISER_PART, pipeline_family
from training.precision import load_for_training, part_dtypes, place
from training.prediction import check_prediction_type
from training.run_files import METRICS_FILE
from training.sampling import EpochPermutation, drop_captions, flip_together, step_draws
from training.stopping import RunCancelled
from training.validation import images_array, render_validation, save_validation, validation_plan

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TRAINING_RECORD = "evalhub_training.json"

DIVERGED = "{what} at step {step}; stopped, {keep}"
REPLICAS_DIFFER = "the processes hold different weights after step {step} (digests {digests}); stopped"
TOO_MANY_STEPS = (
    "{epochs} epochs of {examples} examples at {per_step} a step take {steps} steps, more than {cap}"
)
RESOLUTION_MISFIT = (
    "resolution {resolution} does not fit this {family} model: it must be a multiple of {multiple} "
    "(the VAE's downscaling times the {part})"
)


class TrainingDiverged(RuntimeError):
    pass


class TrainingCancelled(RunCancelled):
    pass


@dataclass(frozen=True)
class TrainResult:
    final_model: Path
    steps: int
    data_hash: str
    metrics: dict
    config: TrainConfig


def _collate(items: list[dict]) -> dict:
    batch = {"caption": [item["caption"] for item in items]}
    for key in ("winner", "loser", "image"):
        if key in items[0]:
            batch[key] = torch.stack([item[key] for item in items])
    return batch


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
        self.dtypes = part_dtypes(config.mixed_precision, config.vae_dtype, lora=bool(config.lora_rank))
        self.pipeline = load_for_training(config.model, self.family, self.dtypes)
        self.paired = config.method != "sft"
        dataset_cls = PreferencePairs if self.paired else CaptionedImages
        self.denoiser = denoiser_of(self.pipeline)
        self.resolution = self._resolution()
        self.dataset = dataset_cls(config.data, self.resolution, split=config.data_split)
        self.data_hash = data_fingerprint(config.data, split=config.data_split)
        self.max_steps, self.batches_per_epoch = self._run_length()
        self.validation = validation_plan(
            config, self.dataset, self.family, validation_interval(config.validation_every, self.max_steps)
        )
        self._prepare_models()
        self._prepare_optimization()

    # -- set-up -------------------------------------------------------------------------

    def _resolution(self) -> int:
        """The training resolution: the configured one, checked against the model, or its native size."""
        vae = self.pipeline.vae
        if self.config.resolution is None:
            return self.denoiser.config.sample_size * vae_scale_factor(vae)
        multiple = resolution_multiple(self.denoiser, vae, self.family)
        if self.config.resolution % multiple:
            part = "DiT's patch size" if self.family == "dit" else "U-Net's downsampling"
            raise ConfigError(
                RESOLUTION_MISFIT.format(
                    resolution=self.config.resolution, family=self.family, multiple=multiple, part=part
                )
            )
        return self.config.resolution

    def _run_length(self) -> tuple[int, int]:
        """The run's optimizer steps (``max_steps``, or what ``epochs`` imply for this data,
        batch and number of processes) and each process's batches an epoch."""
        c, processes = self.config, self.accelerator.num_processes
        batches = max(1, math.ceil(len(self.dataset) / (c.batch_size * processes)))
        if c.epochs is None:
            return c.max_steps, batches
        steps = steps_for_epochs(c.epochs, batches, c.gradient_accumulation_steps)
        if steps > MAX_STEPS:
            per_step = c.batch_size * c.gradient_accumulation_steps * processes
            raise ConfigError(
                TOO_MANY_STEPS.format(
                    epochs=c.epochs, examples=len(self.dataset), per_step=per_step, steps=steps, cap=MAX_STEPS
                )
            )
        return steps, batches

    def _prepare_models(self):
        c, acc, pipe, dtypes = self.config, self.accelerator, self.pipeline, self.dtypes
        schedule = DDPMScheduler.from_config(pipe.scheduler.config)
        prediction_type = schedule.config.prediction_type
        check_prediction_type(prediction_type)
        place(pipe.vae.requires_grad_(False).eval(), acc.device, dtypes.vae)
        assert pipe.vae.dtype != torch.float16, "the VAE overflows in fp16; it runs in fp32 or bf16"
        place(pipe.text_encoder.requires_grad_(False).eval(), acc.device, dtypes.frozen)
        if c.vae_gradient_checkpointing:
            pipe.vae.enable_gradient_checkpointing()
        denoiser = self.denoiser
        reference = None
        if c.lora_rank:
            from diffusers.training_utils import cast_training_params

            # The frozen base can sit in the mixed-precision dtype; the adapters train in fp32.
            place(denoiser.requires_grad_(False), acc.device, dtypes.frozen)
            denoiser.add_adapter(_lora_config(c))
            cast_training_params(denoiser, dtype=torch.float32)
        else:
            place(denoiser, acc.device, torch.float32)
            if c.method == "dpo":
                reference = copy.deepcopy(denoiser).requires_grad_(False).eval()
                place(reference, acc.device, dtypes.frozen)
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
        self.sampler = EpochPermutation(
            len(self.dataset), c.seed, blocks=self.dataset.blocks, max_blocks=ROW_GROUPS_CACHED
        )
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
            num_training_steps=self.max_steps * acc.num_processes,
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
        """Train from step 0 (or the resumed step) to the run's last step, then save the final model."""
        c, acc = self.config, self.accelerator
        start = self._resume() if c.resume else 0
        self.metrics_file = self._open_metrics(start)
        if c.tensorboard:
            acc.init_trackers("evalhub", config={k: v for k, v in c.to_dict().items() if v is not None})
        self._announce(start)
        if start == 0:
            self._validate(0)
        progress = tqdm(
            total=self.max_steps, initial=start, disable=not acc.is_local_main_process, desc=c.method
        )
        batches = self._batches(start)
        step, last, window, micro, started = start, {}, [], 0, time.perf_counter()
        try:
            while step < self.max_steps:
                epoch, batch = next(batches)
                loss, grad_norm = self._micro_step(batch, step, micro)
                window.append(loss)
                micro += 1
                if not acc.sync_gradients:
                    continue
                step += 1
                last = self._after_step(step, epoch, window, grad_norm, time.perf_counter() - started)
                progress.update(1)
                progress.set_postfix(loss=f"{last['loss']:.4g}")
                window, micro, started = [], 0, time.perf_counter()
        finally:
            # Also when the run stops early (diverged, cancelled): its lines stay readable.
            progress.close()
            if self.metrics_file is not None:
                self.metrics_file.close()
        final = self._save_final(step, last)
        acc.end_training()
        return TrainResult(final_model=final, steps=step, data_hash=self.data_hash, metrics=last, config=c)

    def _batches(self, start: int):
        """(epoch, batch) pairs without end, from where optimizer step ``start`` begins: each
        epoch in its seeded order, the first one past what the earlier steps consumed."""
        c, acc = self.config, self.accelerator
        per_epoch = len(self.loader)
        consumed = start * c.gradient_accumulation_steps
        epoch, skip = divmod(consumed, per_epoch) if per_epoch else (0, 0)
        while True:
            self.sampler.epoch = epoch
            self.sampler.start = skip * c.batch_size * acc.num_processes
            skip = 0
            for batch in self.loader:
                yield epoch, batch
            self.sampler.start = 0
            epoch += 1

    def _micro_step(self, batch: dict, step: int, micro: int):
        """Forward and backward of one micro-batch and, when it completes optimizer step
        ``step + 1``, the update. Returns the loss and (at an update) the gradient norm."""
        acc = self.accelerator
        with acc.accumulate(self.models.denoiser):
            loss = self._loss(batch, step, micro)
            acc.backward(loss.total)
            grad_norm = self._grad_norm(step + 1) if acc.sync_gradients else None
            self.optimizer.step()
            self.lr_schedule.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss, grad_norm

    def _loss(self, batch: dict, step: int, micro: int):
        """The step loss of one micro-batch; a non-finite loss stops the run."""
        c, acc = self.config, self.accelerator
        count = len(batch["caption"])
        # Process p holds places p·B … of the micro-step's global batch (accelerate deals
        # whole batches round-robin), so the draws follow the example, not the process.
        draws = step_draws(c.seed, step, micro, acc.process_index * c.batch_size, count)
        captions = drop_captions(list(batch["caption"]), c.empty_prompt_prob, draws)
        if self.paired:
            pixels = torch.cat([batch["winner"], batch["loser"]])
        else:
            pixels = batch["image"]
        if c.random_flip:
            pixels = flip_together(pixels, draws.uniform() < 0.5)
        text = text_conditioning(self.pipeline, captions, acc.device)
        with acc.autocast():
            loss = step_loss(self.models, self.settings, pixels.to(acc.device), text, draws, self.paired)
        if not self._all_finite(loss.total):
            self._diverged(step + 1, f"loss became {loss.total.item()}")
        return loss

    def _grad_norm(self, step: int) -> torch.Tensor:
        """The gradient's norm, clipped to ``max_grad_norm`` where set (an infinite bound only
        measures it). A non-finite norm stops the run here, before the optimizer applies it;
        under fp16 the gradient scaler skips such a step instead."""
        c, acc = self.config, self.accelerator
        norm = acc.clip_grad_norm_(self.params, c.max_grad_norm or math.inf)
        if norm is not None and acc.scaler is None and not self._all_finite(norm):
            self._diverged(step, f"gradient norm became {float(norm)}")
        return norm

    def _after_step(self, step: int, epoch: int, window: list, grad_norm, elapsed: float) -> dict:
        """EMA update, metrics line, checkpoint and cancel poll after optimizer step ``step``."""
        c, acc = self.config, self.accelerator
        if self.ema is not None:
            self.ema.step(self.params)
        samples = len(window) * c.batch_size * acc.num_processes
        digests = self._replica_digests() if c.verify_replicas else None
        record = self._log(step, epoch, window, grad_norm, samples / elapsed, digests)
        if digests is not None and len(set(digests)) > 1:
            raise TrainingDiverged(REPLICAS_DIFFER.format(step=step, digests=", ".join(digests)))
        if self.validation.due(step, self.max_steps):
            self._validate(step)
        if c.checkpoint_every and step % c.checkpoint_every == 0 and step < self.max_steps:
            self._save_checkpoint(step)
        if self.should_stop is not None and self.should_stop():
            self._save_checkpoint(step)
            raise TrainingCancelled(f"stopped on request after step {step}")
        return record

    def _all_finite(self, *tensors: torch.Tensor) -> bool:
        """Whether every value of ``tensors`` is finite on every process."""
        flawed = torch.stack([~torch.isfinite(t.detach()).all() for t in tensors]).any().float()
        # accelerate reduces by sum or max only (a "min" is a sum): any process's flaw counts.
        return self.accelerator.reduce(flawed, reduction="max").item() == 0

    def _weights_finite(self) -> bool:
        trained = list(self.params) + (list(self.ema.shadow_params) if self.ema is not None else [])
        return self._all_finite(*trained)

    def _diverged(self, step: int, what: str):
        found = checkpoints_in(self.out)
        keep = f"the last good checkpoint is {found[-1]}" if found else "no checkpoint had been written"
        message = DIVERGED.format(what=what, step=step, keep=keep)
        if self.accelerator.is_main_process:
            self.metrics_file.write(
                json.dumps({"step": step, "event": "diverged", "message": message}) + "\n"
            )
            self.metrics_file.flush()
        raise TrainingDiverged(message)

    # -- records --------------------------------------------------------------------------

    def _log(self, step, epoch, window, grad_norm, samples_per_s, digests=None) -> dict:
        acc = self.accelerator

        def mean(values):
            return acc.reduce(torch.stack(values).detach().float(), reduction="mean").mean().item()

        record = {"step": step, "epoch": epoch, "loss": mean([w.total for w in window])}
        for part in ("latent", "pixel"):
            if getattr(window[0], part) is not None:
                record[f"{part}_loss"] = mean([getattr(w, part) for w in window])
        if window[0].margins:
            gathered = self._per_pair_gathered(window)
            for part in window[0].margins:
                record[f"implicit_acc_{part}"] = implicit_accuracy(gathered["margins", part]).item()
                record[f"saturated_{part}"] = saturated_share(gathered["logits", part]).item()
            first = "latent" if "latent" in window[0].margins else "pixel"
            record["implicit_acc"] = record[f"implicit_acc_{first}"]
            record.update(self._preference_metrics(window, first, gathered))
        record["lr"] = self.lr_schedule.get_last_lr()[0]
        if grad_norm is not None:
            record["grad_norm"] = float(grad_norm)
        record["samples_per_s"] = samples_per_s
        if digests is not None:
            record["weight_digests"] = digests
        if acc.is_main_process:
            self.metrics_file.write(json.dumps(record) + "\n")
            self.metrics_file.flush()
        if self.config.tensorboard:
            acc.log({k: v for k, v in record.items() if k != "step"}, step=step)
        return record

    def _per_pair_gathered(self, window) -> dict:
        """Every per-pair value of the step's micro-batches (margins, logits, reward margins
        per term; the errors behind them), for the whole global batch: one all-gather of a
        [pairs, values] matrix instead of one per value (up to 14 for DPO on two terms).
        Keyed by (field, term) and, for the errors, (``errors``, term, name)."""
        columns = {}
        for field in ("margins", "logits", "reward_margins"):
            for part in getattr(window[0], field):
                columns[field, part] = [getattr(w, field)[part] for w in window]
        for part in window[0].errors:
            for name in window[0].errors[part]:
                columns["errors", part, name] = [w.errors[part][name] for w in window]
        local = torch.stack([torch.cat(values).detach().float() for values in columns.values()], dim=1)
        every = self.accelerator.gather(local)
        return {key: every[:, i] for i, key in enumerate(columns)}

    @staticmethod
    def _preference_metrics(window, first: str, gathered: dict) -> dict:
        """The errors behind a preference loss, as diffusers' DPO example logs them: the
        model's (and DPO's reference's) mean error on winners and on losers, and the mean
        implicit reward margin, per term; ``raw_model_loss``, ``raw_ref_loss`` and
        ``reward_margin`` for the first term."""
        record = {}
        for part in window[0].errors:
            for name in window[0].errors[part]:  # model_w, model_l, and for DPO ref_w, ref_l
                who, side = name.split("_")
                record[f"{who}_err_{side}_{part}"] = gathered["errors", part, name].mean().item()
            record[f"reward_margin_{part}"] = gathered["reward_margins", part].mean().item()
        record["raw_model_loss"] = 0.5 * (record[f"model_err_w_{first}"] + record[f"model_err_l_{first}"])
        if f"ref_err_w_{first}" in record:
            record["raw_ref_loss"] = 0.5 * (record[f"ref_err_w_{first}"] + record[f"ref_err_l_{first}"])
        record["reward_margin"] = record[f"reward_margin_{first}"]
        return record

    def _announce(self, start: int) -> None:
        """Say what the run trains on and for how long: printed, and the first line of
        ``metrics.jsonl`` (the web app's job page reads its total steps from there)."""
        c, acc = self.config, self.accelerator
        counts = self.dataset.counts
        per_step = c.batch_size * c.gradient_accumulation_steps * acc.num_processes
        unit = "pair" if self.paired else "image"
        epochs = self.max_steps * c.gradient_accumulation_steps / self.batches_per_epoch
        length = _counted(self.max_steps, "step") + (
            f" = {_counted(c.epochs, 'epoch')}"
            if c.epochs is not None
            else f", {epochs:.3g} epoch{'' if epochs == 1 else 's'}"
        )
        message = (
            f"{counts.summary()}; {_counted(per_step, unit)} a step (batch {c.batch_size} × accumulation "
            f"{c.gradient_accumulation_steps} × {_counted(acc.num_processes, 'process')}); {length}"
        )
        event = {
            "event": "start",
            "step": start,
            "examples": counts.kept,
            "rows": counts.rows,
            "ties": counts.ties,
            "unlabelled": counts.unlabelled,
            "data": self.dataset.describe(),
            "epochs": c.epochs,
            "steps_per_epoch": self.batches_per_epoch / c.gradient_accumulation_steps,
            "max_steps": self.max_steps,
            "global_batch": per_step,
            "processes": acc.num_processes,
            "message": message,
        }
        if acc.is_main_process:
            print(f"{event['data']}\n{message}", file=sys.stderr)
            self._write_event(event)

    def _write_event(self, event: dict) -> None:
        self.metrics_file.write(json.dumps(event) + "\n")
        self.metrics_file.flush()

    def _validate(self, step: int) -> None:
        """Render the validation prompts as the model stands after ``step`` (with EMA, in
        its averaged weights) on the main process; the others wait."""
        acc, plan = self.accelerator, self.validation
        if not plan.every:
            return
        if acc.is_main_process:
            if step == 0:
                plan.write(self.out)
            if self.ema is not None:
                self.ema.store(self.params)
                self.ema.copy_to(self.params)
            try:
                images = render_validation(self.pipeline, self.family, plan, self.resolution, acc.autocast())
            finally:
                if self.ema is not None:
                    self.ema.restore(self.params)
            folder = save_validation(self.out, step, images)
            self._write_event(
                {
                    "event": "samples",
                    "step": step,
                    "folder": folder.relative_to(self.out).as_posix(),
                    "images": len(images),
                }
            )
            if self.config.tensorboard:
                tracker = acc.get_tracker("tensorboard", unwrap=True)
                tracker.add_images("validation", images_array(images), step, dataformats="NHWC")
        acc.wait_for_everyone()

    def _replica_digests(self) -> list[str]:
        """Each process's digest of its trained weights (sha256 of their bytes), in process order."""
        digest = hashlib.sha256()
        for param in self.params:
            digest.update(param.detach().float().cpu().numpy().tobytes())
        return gather_object([digest.hexdigest()[:16]])

    def _open_metrics(self, start: int):
        path = self.out / METRICS_FILE
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
        if not self._weights_finite():
            self._diverged(step, "the weights became non-finite")
        folder = self.out / "checkpoints" / f"step-{step}"
        acc.wait_for_everyone()
        acc.save_state(str(folder))
        if acc.is_main_process:
            write_state(folder, step, self.config.to_dict(), self.data_hash)
            for old in checkpoints_in(self.out)[: -self.config.checkpoints_keep]:
                shutil.rmtree(old)

    def _resume(self) -> int:
        """Load the checkpoint ``resume`` names, refusing one of another training; its step."""
        folder = find_checkpoint(self.out, self.config.resume)
        state = read_state(folder)
        check_resumable(folder, state, self.config.to_dict(), self.data_hash)
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
        if not self._weights_finite():
            self._diverged(step, "the weights became non-finite")
        acc.wait_for_everyone()
        final = self.out / "final"
        if not acc.is_main_process:
            return final
        denoiser = acc.unwrap_model(self.models.denoiser)
        if self.ema is not None:
            self.ema.copy_to(self.params)
        subfolder = DENOISER_PART[self.family]
        if self.config.lora_rank:
            denoiser = self._merged_lora(denoiser, subfolder)
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(self.config.model, final, ignore=shutil.ignore_patterns(subfolder))
        denoiser.save_pretrained(final / subfolder)
        counts = self.dataset.counts
        record = {
            "config": self.config.to_dict(),
            "family": self.family,
            "base_model": str(Path(self.config.model).resolve()),
            "data_hash": self.data_hash,
            "data": {"source": self.dataset.describe(), **asdict(counts)},
            "steps": step,
            "final_metrics": metrics,
        }
        (final / TRAINING_RECORD).write_text(json.dumps(record, indent=2))
        return final


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "es" if noun.endswith("s") else "s")


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
        _forget_accelerator_settings()


def _forget_accelerator_settings() -> None:
    """Let the next run in this process choose its own precision and accumulation.

    accelerate keeps an ``AcceleratorState`` and a ``GradientState`` per process, set by
    the first ``Accelerator`` made. A later ``Accelerator(mixed_precision="bf16")`` after an
    fp32 run raises "AcceleratorState has already been initialized and cannot be changed",
    and ``GradientState`` would carry the last run's sync flag and data-loader references
    (stale after a run stopped mid-accumulation: cancelled or diverged). A worker runs many
    jobs in one process, so each run starts from cleared states. The distributed set-up
    (``PartialState``: process group, device) stays, as it must.

    accelerate 1.x has no public way to do this; ``_reset_state`` is what its own test
    utilities and transformers' ``TrainingArguments`` call. ``test_trainer`` runs two jobs
    of different precision in one process, and shows the error without this.
    """
    AcceleratorState._reset_state()
    GradientState._reset_state()
