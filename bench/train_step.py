"""Cost of one training step: latent-only against latent+pixel, in time, memory and FLOPs.

    .venv/bin/python bench/train_step.py                      # tiny and SD 1.5 @ 256²
    .venv/bin/python bench/train_step.py --sizes tiny --repeats 5

Each configuration runs in its own process (peak memory is that process's high-water
mark: peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on a GPU) and times
:func:`training.objective.step_loss` plus its backward pass — the code a training run
executes — for one preference pair (SimPO) or two images (SFT), without the optimizer
step. Models are built from configs with random weights: the tiny test pipeline, and the
Stable Diffusion 1.5 U-Net and VAE at 256² (32×32 latents).

FLOPs are counted with ``torch.utils.flop_counter`` on the meta device with attention
forced to the math kernel (the CPU flash kernel counts as zero). They cover exactly the
timed work, VAE encoder included; the "no-enc" column leaves the encoder out, which is how
``shared/MEASURED.md`` counts (a run could cache latents).

Targets (issue 5): time ratio latent+pixel / latent within 1.2× of the FLOP ratio, and
peak memory of latent+pixel with decoder checkpointing at most 1.5× latent-only.
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
from training.tiny import RESOLUTION, TINY_UNET, TINY_VAE  # noqa: E402
from training.trainer import step_generator  # noqa: E402

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

# (label, method, loss space, decoder checkpointing, pixel crop side fraction)
CONFIGS = [
    ("simpo latent", "simpo", "latent", False, 1.0),
    ("simpo latent+pixel", "simpo", "latent+pixel", False, 1.0),
    ("simpo latent+pixel, dec-ckpt", "simpo", "latent+pixel", True, 1.0),
    ("simpo latent+pixel, crop 1/2", "simpo", "latent+pixel", False, 0.5),
    ("sft latent", "sft", "latent", False, 1.0),
    ("sft latent+pixel", "sft", "latent+pixel", False, 1.0),
    ("sft latent+pixel, dec-ckpt", "sft", "latent+pixel", True, 1.0),
]


def build(size: str, device, decoder_checkpointing: bool):
    spec = SIZES[size]
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(**spec["unet"])
        vae = AutoencoderKL(**spec["vae"])
    vae.requires_grad_(False).eval()
    if decoder_checkpointing:
        vae.enable_gradient_checkpointing()
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
    generator = step_generator(0, step, 0, 0)
    loss = step_loss(models, settings, pixels, text, generator, paired=settings.method != "sft")
    loss.total.backward()
    return loss


# -- worker: time and memory of one configuration, in a fresh process ----------------------


def worker(size: str, index: int, repeats: int, warmup: int, device: str) -> dict:
    label, method, space, ckpt, crop = CONFIGS[index]
    models, spec = build(size, device, ckpt)
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
    for label, method, space, ckpt, crop in CONFIGS:
        models, spec = build(size, "meta", ckpt)
        pixels, text = inputs(spec, method, "meta")
        settings = settings_for(method, space, crop)
        result[label] = count(partial(one_step, models, settings, pixels, text, 0))
    models, spec = build(size, "meta", False)
    pixels, _ = inputs(spec, "simpo", "meta")
    side = spec["resolution"] // vae_scale_factor(models.vae)
    latents = torch.zeros(2, 4, side, side, device="meta")

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
    result["part: VAE decoder fwd ×2"] = count(decode)
    result["part: VAE decoder fwd+bwd ×2"] = count(decode_grad)
    return result


# -- the table ----------------------------------------------------------------------------


def run_worker(size, index, repeats, warmup, device, threads) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--worker", size, str(index), "--repeats", str(repeats),
               "--warmup", str(warmup), "--device", device, "--threads", str(threads)]
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
    return "\n".join(lines)


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
