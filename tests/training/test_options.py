"""One declaration per option: the configs are built from it, and its rules resolve and
refuse values with the messages users see (training.options, training.pipelines)."""

import json
import re
import types
import typing
from dataclasses import fields

import pytest

from training.config import TrainConfig, resolved
from training.generate_config import GenerateConfig
from training.options import (
    BELOW_MINIMUM,
    GAMMA_IS_SIMPOS,
    GENERATE_OPTIONS,
    MAX_BATCH,
    MAX_SEED,
    MAX_STEPS,
    NEGATIVE,
    NOT_A_CHOICE,
    NOT_POSITIVE,
    OUT_OF_RANGE,
    SFT_TAKES_NO_BETA,
    TOO_LARGE,
    TRAIN_OPTIONS,
    UNKNOWN_OPTIONS,
    WRONG_TYPE,
    OptionError,
    generate_options_validate,
    train_options_validate,
)
from training.pipelines import NO_DENOISER, NOT_A_PIPELINE, ModelLoadError, pipeline_family


def _base_type(annotation):
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


@pytest.mark.parametrize(
    "config_class, declared", [(TrainConfig, TRAIN_OPTIONS), (GenerateConfig, GENERATE_OPTIONS)]
)
def test_each_config_field_is_its_declared_option(config_class, declared):
    """Every declared option is a config field of the declared type and default, and the
    config's other fields are its paths (required or not), declared beside it."""
    options = {f.name: (f, f.metadata["option"]) for f in fields(config_class)}
    assert set(declared) <= set(options)
    for name, (f, option) in options.items():
        assert option.name == name and _base_type(f.type) is option.kind and f.default == option.default
        if name in declared:
            assert option is declared[name]
        else:
            assert option.kind is str


def test_defaults_that_depend_on_the_model_or_method_are_resolved():
    """λ/μ by family (paper §4.2), β by method, the pixel term's β from β, LoRA alpha from
    the rank, guidance by family; without a family, what needs one stays unset."""
    assert train_options_validate({})["pixel_weight"] is None
    assert train_options_validate({}, family="dit")["pixel_weight"] == 8.0
    assert train_options_validate({}, family="unet")["pixel_weight"] == 2.0
    dpo = train_options_validate({"method": "dpo", "lora_rank": 4})
    assert (dpo["beta"], dpo["pixel_beta"], dpo["lora_alpha"]) == (2500.0, 2500.0, 4.0)
    simpo = train_options_validate({"beta": 30, "pixel_beta": 3.0})
    assert (simpo["beta"], simpo["pixel_beta"]) == (30.0, 3.0) and isinstance(simpo["beta"], float)
    assert train_options_validate({"method": "sft"})["beta"] is None
    assert generate_options_validate({}, family="dit")["guidance"] == 4.5
    assert generate_options_validate({"guidance": 2}, family="dit")["guidance"] == 2.0
    base = TrainConfig(model="m", data="d", output_dir="o", method="dpo")
    assert resolved(base, "unet").pixel_weight == 2.0 and resolved(base, "unet").beta == 2500.0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"colour": "red"}, UNKNOWN_OPTIONS.format(names="colour")),
        ({"max_steps": "3"}, WRONG_TYPE.format(name="max_steps", kind="a whole number", value="3")),
        ({"max_steps": True}, WRONG_TYPE.format(name="max_steps", kind="a whole number", value=True)),
        ({"batch_size": None}, WRONG_TYPE.format(name="batch_size", kind="a whole number", value=None)),
        (
            {"learning_rate": float("nan")},
            WRONG_TYPE.format(name="learning_rate", kind="a finite number", value=float("nan")),
        ),
        ({"method": "ppo"}, NOT_A_CHOICE.format(name="method", choices="sft, dpo, simpo", value="ppo")),
        ({"learning_rate": 0.0}, NOT_POSITIVE.format(name="learning_rate", value=0.0)),
        ({"seed": -1}, NEGATIVE.format(name="seed", value=-1)),
        ({"seed": 2**70}, TOO_LARGE.format(name="seed", cap=4294967295, value=2**70)),
        ({"max_steps": 10**30}, TOO_LARGE.format(name="max_steps", cap=MAX_STEPS, value=10**30)),
        ({"max_steps": 0}, NOT_POSITIVE.format(name="max_steps", value=0)),
        (
            {"empty_prompt_prob": 1.0},
            OUT_OF_RANGE.format(name="empty_prompt_prob", interval="[0, 1)", value=1.0),
        ),
        ({"pixel_crop": 0.0}, OUT_OF_RANGE.format(name="pixel_crop", interval="(0, 1]", value=0.0)),
        ({"ema_decay": 1.0}, OUT_OF_RANGE.format(name="ema_decay", interval="(0, 1)", value=1.0)),
        ({"method": "sft", "gamma": 1.0}, SFT_TAKES_NO_BETA),
        ({"method": "dpo", "gamma": 1.0}, GAMMA_IS_SIMPOS),
    ],
)
def test_training_values_are_refused_with_the_message_users_see(values, message):
    """Type, choices, bounds and the rules across options, each with its message."""
    with pytest.raises(OptionError, match=re.escape(message)):
        train_options_validate(values)


def test_generation_bounds_are_refused_with_the_message_users_see():
    """The generation options' bounds, including the caps the web app relies on."""
    cases = [
        (
            {"images_per_prompt": 65},
            OUT_OF_RANGE.format(name="images_per_prompt", interval="[1, 64]", value=65),
        ),
        ({"steps": 0}, OUT_OF_RANGE.format(name="steps", interval="[1, 1000]", value=0)),
        ({"batch_size": 0}, BELOW_MINIMUM.format(name="batch_size", minimum=1, value=0)),
        (
            {"batch_size": MAX_BATCH + 1},
            TOO_LARGE.format(name="batch_size", cap=MAX_BATCH, value=MAX_BATCH + 1),
        ),
        ({"guidance": -1.0}, NEGATIVE.format(name="guidance", value=-1.0)),
        ({"seed": 2**70}, TOO_LARGE.format(name="seed", cap=MAX_SEED, value=2**70)),
        ({"steps": 10**30}, OUT_OF_RANGE.format(name="steps", interval="[1, 1000]", value=10**30)),
    ]
    for values, message in cases:
        with pytest.raises(OptionError, match=re.escape(message)):
            generate_options_validate(values)


@pytest.mark.parametrize(
    "option", [*TRAIN_OPTIONS.values(), *GENERATE_OPTIONS.values()], ids=lambda option: option.name
)
def test_every_whole_number_option_has_an_upper_bound(option):
    """No int a run takes is unbounded: each fits the 32-bit progress column and, for seeds,
    the generators and the catalog's 64-bit seed column with room for the image's place."""
    if option.kind is not int:
        return
    highest = option.maximum if option.maximum is not None else option.cap
    assert highest is not None and highest <= (MAX_SEED if option.name == "seed" else 2**31 - 1)
    assert option.check(highest) == highest
    with pytest.raises(OptionError, match=option.name):
        option.check(highest + 1)


def test_the_option_to_blame_is_named():
    """A form or an API answer shows the error beside the option it concerns."""
    with pytest.raises(OptionError) as refused:
        train_options_validate({"method": "sft", "beta": 5.0})
    assert refused.value.option == "beta"


def test_a_pipelines_family_is_read_from_its_model_index(tmp_path):
    """Plain JSON: a U-Net or a transformer part, else an error naming the folder."""
    (tmp_path / "model_index.json").write_text(json.dumps({"transformer": ["diffusers", "X"]}))
    assert pipeline_family(tmp_path) == "dit"
    (tmp_path / "model_index.json").write_text(json.dumps({"vae": ["diffusers", "X"]}))
    with pytest.raises(ModelLoadError, match=re.escape(NO_DENOISER.format(path=tmp_path))):
        pipeline_family(tmp_path)
    (tmp_path / "model_index.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a JSON object"):
        pipeline_family(tmp_path)
    with pytest.raises(ModelLoadError, match=re.escape(NOT_A_PIPELINE.format(path=tmp_path / "none"))):
        pipeline_family(tmp_path / "none")
