"""Time per step of latent and pixel DPO on one process and on several, same global batch.

    .venv/bin/python bench/multi_process.py                       # 1 and 2 processes
    .venv/bin/python bench/multi_process.py --steps 20 --resolution 128 --processes 1 2

Each configuration is a real run of ``python -m training train`` (under ``accelerate
launch --multi_gpu --num_processes N`` for N > 1: torchrun, gloo on CPUs, NCCL on GPUs) on
the tiny test pipeline with LoRA, DPO, validation renders off, a global batch of
``--global-batch`` pairs split evenly over the processes. A step's time is the global batch
over the ``samples_per_s`` its ``metrics.jsonl`` line records (forward, backward, gradient
all-reduce and optimizer step); the first ``--warmup`` steps are left out and the median of
the rest is printed, with the speed-up over one process and how far each step's loss and
model error on winners stray from the one-process run's (relative, largest over the
steps). They agree up to the order of float sums (training.sampling draws per example,
not per process), and the sums differ: one process of N threads and N processes of one
thread each reduce in different orders. The error agrees to about 1e-7; the loss, where β
(2500 for DPO) multiplies a difference of errors, to about 1e-4.

On a machine with N cores, N processes of one thread each against one process of N
threads measures how well the work splits, not a GPU cluster's scaling.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pairs(folder: Path, count: int) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        for side in ("w", "l"):
            pixels = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}{side}.png")
        lines.append({"prompt": f"a shape {i}", "winner": f"{i}w.png", "loser": f"{i}l.png"})
    (folder / "pairs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder / "pairs.jsonl"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(args, model: Path, data: Path, out: Path, space: str, processes: int) -> list[dict]:
    command = [sys.executable, "-m", "training", "train"]
    if processes > 1:
        accelerate = Path(sys.executable).parent / "accelerate"
        command = [
            str(accelerate), "launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(_free_port()), "-m", "training", "train",
        ]  # fmt: skip
    command += [
        "--model", str(model), "--data", str(data), "--output-dir", str(out), "--method", "dpo",
        "--loss-space", space, "--lora-rank", "4", "--max-steps", str(args.steps),
        "--batch-size", str(args.global_batch // processes), "--validation-every", "0",
        "--resolution", str(args.resolution), "--seed", "0",
    ]  # fmt: skip
    threads = max(1, (os.cpu_count() or 1) // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if "loss" in line]


def _stray(base: list[dict], lines: list[dict], key: str) -> float:
    """The largest relative difference of ``key`` between two runs' steps."""
    return max(abs(a[key] - b[key]) / abs(a[key]) for a, b in zip(base, lines, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--spaces", nargs="+", default=["latent", "pixel"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--global-batch", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args()
    if any(args.global_batch % n for n in args.processes):
        parser.error("--global-batch must split evenly over every --processes value")
    sys.path.insert(0, str(REPO))
    from training.tiny import build_tiny_pipeline

    with tempfile.TemporaryDirectory(prefix="evalhub-bench-") as tmp:
        root = Path(tmp)
        model = Path(build_tiny_pipeline("unet", root / "model", seed=0))
        (root / "data").mkdir()
        data = _pairs(root / "data", 2 * args.global_batch)
        print(f"tiny U-Net at {args.resolution}², DPO + LoRA, global batch {args.global_batch} pairs, "
              f"{args.steps} steps (first {args.warmup} left out), {os.cpu_count()} cores")  # fmt: skip
        print(f"{'loss space':<10} {'procs':>5} {'s/step':>8} {'speed-up':>9} {'Δloss':>9} {'Δerror':>9}")
        for space in args.spaces:
            base, base_time = None, None
            for processes in args.processes:
                lines = _run(args, model, data, root / f"{space}-{processes}", space, processes)
                per_step = statistics.median(
                    args.global_batch / line["samples_per_s"] for line in lines[args.warmup :]
                )
                if base is None:
                    base, base_time = lines, per_step
                error = f"model_err_w_{space}"
                print(
                    f"{space:<10} {processes:>5} {per_step:>8.3f} {base_time / per_step:>8.2f}×"
                    f" {_stray(base, lines, 'loss'):>9.1e} {_stray(base, lines, error):>9.1e}"
                )


if __name__ == "__main__":
    main()
