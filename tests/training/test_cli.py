"""`python -m training`: options, config files, validation, a real run (training.cli, training.config)."""

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from training.cli import build_parser, main, train_config
from training.config import ConfigError, TrainConfig, resolved

REPO = Path(__file__).resolve().parents[2]


def test_help_documents_every_config_field():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in text


def test_config_file_with_command_line_overrides(tmp_path):
    config_file = tmp_path / "run.json"
    config_file.write_text(
        json.dumps({"model": "m", "data": "d", "output_dir": "o", "beta": 5.0, "max_steps": 9})
    )
    args = build_parser().parse_args(
        ["train", "--config", str(config_file), "--max-steps", "3", "--random-flip"]
    )
    config = train_config(args)
    assert (config.beta, config.max_steps, config.random_flip, config.method) == (5.0, 3, True, "simpo")


@pytest.mark.parametrize(
    "values, message",
    [
        ({"method": "ppo"}, "method must be one of sft, dpo, simpo"),
        ({"beta": 0.0}, "beta must be positive"),
        ({"method": "sft", "beta": 5.0}, "apply to dpo/simpo"),
        ({"method": "dpo", "gamma": 1.0}, "dpo does not take one"),
        ({"empty_prompt_prob": 1.0}, r"empty_prompt_prob must be in \[0, 1\)"),
        ({"pixel_crop": 0.0}, r"pixel_crop must be in \(0, 1\]"),
        ({"resolution": 0}, "resolution must be positive"),
        ({"output_dir": ""}, "output_dir is required"),
        ({"colour": "red"}, "unknown option"),
    ],
)
def test_invalid_configs_are_refused_before_anything_runs(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({"model": "m", "data": "d", "output_dir": "o", **values})


def test_paper_defaults_are_resolved_per_family_and_method():
    base = TrainConfig(model="m", data="d", output_dir="o")
    assert (resolved(base, "dit").pixel_weight, resolved(base, "unet").pixel_weight) == (8.0, 2.0)
    assert resolved(TrainConfig(model="m", data="d", output_dir="o", method="dpo"), "unet").beta == 2500.0
    simpo = resolved(TrainConfig(model="m", data="d", output_dir="o", beta=30.0), "unet")
    assert (simpo.beta, simpo.pixel_beta, simpo.weight_decay) == (30.0, 30.0, 5e-6)


def test_tiny_then_train_through_python_dash_m(pairs_folder, tmp_path):
    assert main(["tiny", "unet", str(tmp_path / "tiny")]) == 0
    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "--model",
            str(tmp_path / "tiny"),
            "--data",
            str(pairs_folder),
            "--output-dir",
            str(tmp_path / "run"),
            "--max-steps",
            "1",
            "--method",
            "sft",
            "--loss-space",
            "latent",
            "--validation-steps",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 1 and Path(summary["final_model"], "unet").is_dir()
    # By default a run says what it trains on and renders its validation prompts at the
    # start and the end.
    assert "kept 4 of 4 pairs" in trained.stderr and "1 step, " in trained.stderr
    for step in (0, 1):
        assert sorted(p.name for p in (tmp_path / f"run/samples/step-00000{step}").iterdir()) == [
            "00.png",
            "01.png",
            "02.png",
            "03.png",
        ]


def test_an_invalid_option_exits_2_with_the_reason(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "m", "--data", "d", "--output-dir", "o", "--beta", "-1"])
    assert exit_info.value.code == 2 and "beta must be positive" in capsys.readouterr().err


def test_bad_data_or_checkpoint_exit_2_with_the_reason(tiny_models, pairs_folder, tmp_path, capsys):
    base = ["train", "--model", str(tiny_models["unet"]), "--output-dir", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--data", str(tmp_path / "missing")])
    assert exit_info.value.code == 2 and "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--data", str(tmp_path), "--max-steps", "1"])
    assert "holds none of pairs.jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--data", str(pairs_folder), "--resume", "latest"])
    assert "holds no checkpoint" in capsys.readouterr().err
