"""Training on two processes, as ``accelerate launch`` runs it on many GPUs (here: two CPU
processes joined by gloo).

Each example draws its noise, timestep, flip and empty prompt from its own place in the
step's global batch (training.sampling), so two processes of batch 1 must train what one
process of batch 2 trains: the same losses step by step, the same weights at the end (up to
the order of float sums), every process holding the same weights after every step, and a
resume from a two-process checkpoint continuing as if never stopped.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).parent / "accelerate"

# Pixel DPO with LoRA (paper eq. 4 in pixel space), flips and empty prompts on, a learning
# rate large enough that the weights move visibly in four steps.
RUN = [
    "--method", "dpo", "--loss-space", "pixel", "--lora-rank", "4", "--learning-rate", "1e-3",
    "--random-flip", "--empty-prompt-prob", "0.3", "--max-steps", "4", "--checkpoint-every", "2",
    "--validation-every", "0", "--seed", "7",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _train(out: Path, model: Path, data: Path, *options: str, processes: int = 1) -> list[dict]:
    """Run ``python -m training train`` on ``processes`` CPU processes; the metrics lines
    (and, first, the run's standard output as ``{"stdout": ...}``)."""
    command = [sys.executable, "-m", "training", "train"]
    if processes > 1:
        # accelerate's torchrun launcher (its --cpu launcher wants MPI); without CUDA the
        # trainer joins a gloo process group.
        command = [
            str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(_free_port()),
            "-m", "training", "train",
        ]  # fmt: skip
    command += ["--model", str(model), "--data", str(data), "--output-dir", str(out), *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return [{"stdout": done.stdout}] + [
        json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
    ]


def _steps(lines: list[dict]) -> dict[int, dict]:
    return {line["step"]: line for line in lines if "loss" in line}


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "final/unet/diffusion_pytorch_model.safetensors")


@pytest.fixture(scope="module")
def runs(tiny_models, pairs_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    model = tiny_models["unet"]
    one = _train(root / "one", model, pairs_folder, *RUN, "--batch-size", "2")
    two = _train(
        root / "two", model, pairs_folder, *RUN, "--batch-size", "1", "--verify-replicas", processes=2
    )
    return root, one, two


def test_two_processes_train_what_one_process_of_twice_the_batch_trains(runs):
    root, one, two = runs
    start = next(line for line in two if line.get("event") == "start")
    assert (start["processes"], start["global_batch"], start["max_steps"]) == (2, 2, 4)
    single, double = _steps(one), _steps(two)
    assert sorted(single) == sorted(double) == [1, 2, 3, 4]
    assert single[1]["loss"] == pytest.approx(0.6931471805599453, abs=1e-6)  # ln 2: LoRA starts at the base
    for step in range(1, 5):
        for key in ("loss", "model_err_w_pixel", "model_err_l_pixel", "ref_err_w_pixel", "implicit_acc"):
            assert double[step][key] == pytest.approx(single[step][key], rel=1e-4, abs=1e-7), (step, key)
    assert single[4]["loss"] != pytest.approx(single[1]["loss"], abs=1e-5)  # the weights did move
    a, b = _weights(root / "one"), _weights(root / "two")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6, msg=name)


def test_the_processes_share_each_epoch_and_write_once(runs):
    """4 pairs, 2 processes × 1 pair a step: an epoch is 2 steps; one process writes the
    metrics, the final model and the summary; a checkpoint keeps each process's RNG state."""
    root, _, two = runs
    assert [(step, line["epoch"]) for step, line in _steps(two).items()] == [(1, 0), (2, 0), (3, 1), (4, 1)]
    assert two[0]["stdout"].count("final_model") == 1
    assert len([line for line in two if line.get("event") == "start"]) == 1
    assert {p.name for p in (root / "two/checkpoints/step-2").glob("random_states_*")} == {
        "random_states_0.pkl",
        "random_states_1.pkl",
    }


def test_every_process_holds_the_same_weights_after_every_step(runs):
    _, _, two = runs
    steps = _steps(two)
    for step, line in steps.items():
        digests = line["weight_digests"]
        assert len(digests) == 2 and digests[0] == digests[1], step
    assert len({line["weight_digests"][0] for line in steps.values()}) == 4  # and they change each step


def test_a_two_process_run_resumes_from_its_checkpoint_as_if_never_stopped(runs, tiny_models, pairs_folder):
    root, _, two = runs
    cut = root / "cut"
    shutil.copytree(root / "two", cut, ignore=shutil.ignore_patterns("final"))
    assert [p.name for p in (cut / "checkpoints").iterdir()] == ["step-2"]
    resumed = _train(
        cut, tiny_models["unet"], pairs_folder, *RUN, "--batch-size", "1", "--resume", "latest", processes=2
    )
    whole, again = _steps(two), _steps(resumed)
    assert sorted(again) == [1, 2, 3, 4]
    for step in (3, 4):
        for key in ("loss", "model_err_w_pixel", "implicit_acc", "grad_norm"):
            assert again[step][key] == whole[step][key], (step, key)
    a, b = _weights(root / "two"), _weights(cut)
    for name in a:
        assert torch.equal(a[name], b[name]), name
