"""Cost of one training step: latent-only against latent+pixel, in time, memory and FLOPs.

    .venv/bin/python bench/train_step.py                      # tiny and SD 1.5 @ 256²
    .venv/bin/python bench/train_step.py --sizes tiny --repeats 5

Each configuration runs in its own process (peak memory is that process's high-water
mark: peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on a GPU) and times
:func:`training.objective.step_loss` plus its backward pass — the code a training run
executes — for one preference pair (SimPO) or two images (SFT), without the optimizer
step. Models are built from configs with random weights: the tiny test pipeline, and the
Stable Diffusion 1.5 U-Net and VAE at 256² (32×32 latents). Configurations differ in the
loss space, gradient checkpointing of the denoiser ("den-ckpt") and of the VAE decoder
("dec-ckpt"), and the approximate pixel crop.

FLOPs are counted with ``torch.utils.flop_counter`` on the meta device with attention
forced to the math kernel (the CPU flash kernel counts as zero). They cover exactly the
timed work, VAE encoder included; the "no-enc" column leaves the encoder out, which is how
``shared/MEASURED.md`` counts (a run could cache latents). Each part is also counted
alone, for the batch of one step (2 latents): the denoiser's forward+backward, the VAE
decoder's forward, and its forward+backward (gradient to the latent only).

Targets (issue 5), printed as PASS/FAIL lines per method:

- time: (latent+pixel time / latent time) ≤ 1.2 × (latent+pixel FLOPs / latent FLOPs);
- memory with checkpointing on: peak of latent+pixel with denoiser and decoder
  checkpointing ≤ 1.5 × peak of latent-only with denoiser checkpointing; also latent+pixel
  with decoder checkpointing against plain latent-only.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from training.models import TextConditioning, vae_scale_factor  # noqa: E402
from training.objective import StepModels, StepSettings, step_loss  # noqa: E402
from training.sampling import step_draws  # noqa: E402
from training.tiny import RESOLUTION, TINY_UNET, TINY_VAE  # noqa: E402

SIZES = {
    "tiny": {"resolution": RESOLUTION, "text": (77, 32), "unet": TINY_UNET, "vae": TINY_VAE},
    "sd15-256": {
        "resolution": 256,
        "text": (77, 768),
        # Stable Diffusion 1.5's U-Net (860M parameters) and VAE configs.
        "unet": dict(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768,
            attention_head_dim=8,
        ),
        "vae": dict(
            in_channels=3,
            out_channels=3,
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
        ),
    },
}

# (label, method, loss space, denoiser checkpointing, decoder checkpointing, pixel crop side fraction)
CONFIGS = [
    ("simpo latent", "simpo", "latent", False, False, 1.0),
    ("simpo latent+pixel", "simpo", "latent+pixel", False, False, 1.0),
    ("simpo latent+pixel, dec-ckpt", "simpo", "latent+pixel", False, True, 1.0),
    ("simpo latent, den-ckpt", "simpo", "latent", True, False, 1.0),
    ("simpo latent+pixel, den+dec-ckpt", "simpo", "latent+pixel", True, True, 1.0),
    ("simpo latent+pixel, crop 1/2", "simpo", "latent+pixel", False, False, 0.5),
    ("sft latent", "sft", "latent", False, False, 1.0),
    ("sft latent+pixel", "sft", "latent+pixel", False, False, 1.0),
    ("sft latent+pixel, dec-ckpt", "sft", "latent+pixel", False, True, 1.0),
    ("sft latent, den-ckpt", "sft", "latent", True, False, 1.0),
    ("sft latent+pixel, den+dec-ckpt", "sft", "latent+pixel", True, True, 1.0),
]
TIME_TARGET = 1.2  # measured time ratio / FLOP ratio
MEMORY_TARGET = 1.5  # peak latent+pixel / peak latent-only, checkpointing on


def build(size: str, device, denoiser_checkpointing: bool = False, decoder_checkpointing: bool = False):
    spec = SIZES[size]
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(**spec["unet"])
        vae = AutoencoderKL(**spec["vae"])
    vae.requires_grad_(False).eval()
    if decoder_checkpointing:
        vae.enable_gradient_checkpointing()
    if denoiser_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    schedule = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    resolution = spec["resolution"]
    models = StepModels(
        denoiser=unet,
        vae=vae,
        family="unet",
        alphas_cumprod=schedule.alphas_cumprod.to(device),
        prediction_type="epsilon",
        image_size=(resolution, resolution),
    )
    return models, spec


def inputs(spec, method: str, device):
    resolution, (tokens, width) = spec["resolution"], spec["text"]
    images = 2  # one pair for SimPO, two images for SFT
    generator = torch.Generator().manual_seed(1)
    pixels = (torch.rand(images, 3, resolution, resolution, generator=generator) * 2 - 1).to(device)
    captions = 1 if method != "sft" else images
    text = TextConditioning(torch.randn(captions, tokens, width, generator=generator).to(device), None)
    return pixels, text


def settings_for(method, space, crop) -> StepSettings:
    beta = 100.0 if method != "sft" else None
    return StepSettings(
        method=method, loss_space=space, pixel_weight=2.0, pixel_crop=crop, beta=beta, pixel_beta=beta
    )


def one_step(models, settings, pixels, text, step: int):
    draws = step_draws(0, step, 0, 0, len(text.embeds))
    loss = step_loss(models, settings, pixels, text, draws, paired=settings.method != "sft")
    loss.total.backward()
    return loss


# -- worker: time and memory of one configuration, in a fresh process ----------------------


def worker(size: str, index: int, repeats: int, warmup: int, device: str) -> dict:
    label, method, space, den_ckpt, dec_ckpt, crop = CONFIGS[index]
    models, spec = build(size, device, den_ckpt, dec_ckpt)
    pixels, text = inputs(spec, method, device)
    settings = settings_for(method, space, crop)
    times = []
    for step in range(warmup + repeats):
        models.denoiser.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        one_step(models, settings, pixels, text, step)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"times": times, "median": statistics.median(times), "peak_bytes": peak}


# -- FLOPs on the meta device --------------------------------------------------------------


def count(fn) -> float:
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def flops(size: str) -> dict:
    result = {}
    for label, method, space, den_ckpt, dec_ckpt, crop in CONFIGS:
        models, spec = build(size, "meta", den_ckpt, dec_ckpt)
        pixels, text = inputs(spec, method, "meta")
        settings = settings_for(method, space, crop)
        result[label] = count(partial(one_step, models, settings, pixels, text, 0))
    models, spec = build(size, "meta")
    pixels, _ = inputs(spec, "simpo", "meta")
    side = spec["resolution"] // vae_scale_factor(models.vae)
    latents = torch.zeros(2, 4, side, side, device="meta")
    tokens, width = spec["text"]
    embeds = torch.zeros(2, tokens, width, device="meta")
    timesteps = torch.zeros(2, dtype=torch.long, device="meta")

    def denoiser_grad():
        models.denoiser(latents, timesteps, encoder_hidden_states=embeds).sample.sum().backward()

    def encode():
        with torch.no_grad():
            models.vae.encode(pixels).latent_dist.sample()

    def decode_grad():
        z = latents.clone().requires_grad_(True)
        models.vae.decode(z).sample.sum().backward()

    def decode():
        with torch.no_grad():
            models.vae.decode(latents)

    result["part: VAE encoder ×2"] = count(encode)
    result["part: U-Net fwd+bwd ×2"] = count(denoiser_grad)
    result["part: VAE decoder fwd ×2"] = count(decode)
    result["part: VAE decoder fwd+bwd ×2"] = count(decode_grad)
    return result


# -- the table ----------------------------------------------------------------------------


def run_worker(size, index, repeats, warmup, device, threads) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--worker", size, str(index), "--repeats", str(repeats)]
    command += ["--warmup", str(warmup), "--device", device, "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode:
        raise SystemExit(f"worker {size} / {CONFIGS[index][0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(size: str, measured: dict, counted: dict) -> str:
    encoder = counted["part: VAE encoder ×2"]
    repeats = len(next(iter(measured.values()))["times"])
    lines = [
        f"\n## {size} (one pair / two images per step; median of {repeats})",
        "| step | time s | × latent | GFLOP | × latent | no-enc × | time× / FLOP× | peak GiB | × latent |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, method, *_ in CONFIGS:
        base = f"{method} latent"
        m, b = measured[label], measured[base]
        t_ratio = m["median"] / b["median"]
        f_ratio = counted[label] / counted[base]
        f_ratio_noenc = (counted[label] - encoder) / (counted[base] - encoder)
        lines.append(
            f"| {label} | {m['median']:.3f} | {t_ratio:.2f} | {counted[label]:.1f} | {f_ratio:.2f} | "
            f"{f_ratio_noenc:.2f} | {t_ratio / f_ratio:.2f} | {m['peak_bytes'] / 2**30:.2f} | "
            f"{m['peak_bytes'] / b['peak_bytes']:.2f} |"
        )
    lines.append("")
    lines += [f"{k}: {v:.1f} GFLOP" for k, v in counted.items() if k.startswith("part:")]
    lines += ["", "targets (issue 5):", *targets(measured, counted)]
    return "\n".join(lines)


def _verdict(value: float, bound: float) -> str:
    return "PASS" if value <= bound else "FAIL"


def targets(measured: dict, counted: dict) -> list[str]:
    """One PASS/FAIL line per target and method (see the module docstring)."""
    lines = []
    for method in dict.fromkeys(config[1] for config in CONFIGS):
        latent, pixel = measured[f"{method} latent"], measured[f"{method} latent+pixel"]
        t_ratio = pixel["median"] / latent["median"]
        f_ratio = counted[f"{method} latent+pixel"] / counted[f"{method} latent"]
        lines.append(
            f"{_verdict(t_ratio / f_ratio, TIME_TARGET)} {method} time: latent+pixel / latent = "
            f"{t_ratio:.2f}× for {f_ratio:.2f}× the FLOPs, {t_ratio / f_ratio:.2f} ≤ {TIME_TARGET}"
        )
        for pixel_label, latent_label in [
            (f"{method} latent+pixel, den+dec-ckpt", f"{method} latent, den-ckpt"),
            (f"{method} latent+pixel, dec-ckpt", f"{method} latent"),
        ]:
            ratio = measured[pixel_label]["peak_bytes"] / measured[latent_label]["peak_bytes"]
            lines.append(
                f"{_verdict(ratio, MEMORY_TARGET)} {method} peak memory: {pixel_label!r} / "
                f"{latent_label!r} = {ratio:.2f} ≤ {MEMORY_TARGET}"
            )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "sd15-256"], choices=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per configuration (median)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 2 tiny, 0 SD)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (this machine has 2 cores)")
    parser.add_argument("--worker", nargs=2, metavar=("SIZE", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        size, index = args.worker
        print(json.dumps(worker(size, int(index), args.repeats, args.warmup or 0, args.device)))
        return
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} threads")
    for size in args.sizes:
        warmup = args.warmup if args.warmup is not None else (2 if size == "tiny" else 0)
        measured = {}
        for index, config in enumerate(CONFIGS):
            measured[config[0]] = run_worker(size, index, args.repeats, warmup, args.device, args.threads)
            print(f"  {size} {config[0]}: {measured[config[0]]['median']:.3f} s", file=sys.stderr, flush=True)
        print(table(size, measured, flops(size)), flush=True)


if __name__ == "__main__":
    main()
