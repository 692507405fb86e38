"""The launch form, the API and ``python -m training`` accept and refuse the same values of
every option a job takes, with the trainer's message where the trainer's rules refuse
(evalhub.jobs.option_fields, training.options)."""

import contextlib
import io

import pytest
from rest_framework.fields import empty

from evalhub.jobs import job_options
from evalhub.jobs.api import (
    GenerationLaunchInputSerializer,
    GenerationOptionFields,
    TrainingLaunchInputSerializer,
    TrainingOptionFields,
)
from evalhub.jobs.forms import GenerationForm, GenerationOptionsForm, TrainingForm, TrainingOptionsForm
from training.cli import build_parser, generate_config, train_config
from training.options import (
    GENERATE_OPTIONS,
    MAX_BATCH,
    MAX_RANK,
    MAX_SEED,
    MAX_STEPS,
    MAX_VALIDATION_PROMPTS,
    NEGATIVE,
    NOT_POSITIVE,
    OUT_OF_RANGE,
    SFT_TAKES_NO_BETA,
    STEPS_OR_EPOCHS,
    TOO_LARGE,
    TRAIN_OPTIONS,
)

ACCEPTED = "accepted"
REFUSED = "refused"  # by the value's type or choices: each interface words it its own way

TRAINING_CASES = [
    ({"method": "sft"}, ACCEPTED),
    ({"method": "dpo"}, ACCEPTED),
    ({"method": "simpo"}, ACCEPTED),
    ({"method": "ppo"}, REFUSED),
    ({"method": "SimPO"}, REFUSED),  # the label, not the value
    ({"loss_space": "latent"}, ACCEPTED),
    ({"loss_space": "pixel"}, ACCEPTED),
    ({"loss_space": "latent+pixel"}, ACCEPTED),
    ({"loss_space": "both"}, REFUSED),
    ({"pixel_weight": 0.0}, ACCEPTED),
    ({"pixel_weight": 8.0}, ACCEPTED),
    ({"pixel_weight": -1.0}, NEGATIVE.format(name="pixel_weight", value=-1.0)),
    ({"pixel_weight": "heavy"}, REFUSED),
    ({"pixel_weight": "nan"}, REFUSED),
    ({"pixel_weight": "inf"}, REFUSED),
    ({"beta": 0.5}, ACCEPTED),
    ({"beta": 5000.0}, ACCEPTED),
    ({"beta": 0.0}, NOT_POSITIVE.format(name="beta", value=0.0)),
    ({"beta": -5.0}, NOT_POSITIVE.format(name="beta", value=-5.0)),
    ({"max_steps": 1}, ACCEPTED),
    ({"max_steps": 500}, ACCEPTED),
    ({"max_steps": MAX_STEPS}, ACCEPTED),
    ({"max_steps": 0}, NOT_POSITIVE.format(name="max_steps", value=0)),
    ({"max_steps": -3}, NOT_POSITIVE.format(name="max_steps", value=-3)),
    ({"max_steps": 10**30}, TOO_LARGE.format(name="max_steps", cap=MAX_STEPS, value=10**30)),
    ({"max_steps": 1.5}, REFUSED),
    ({"max_steps": "many"}, REFUSED),
    ({"epochs": 1}, ACCEPTED),
    ({"epochs": 100}, ACCEPTED),
    ({"epochs": 0}, NOT_POSITIVE.format(name="epochs", value=0)),
    ({"epochs": MAX_STEPS + 1}, TOO_LARGE.format(name="epochs", cap=MAX_STEPS, value=MAX_STEPS + 1)),
    ({"epochs": 2.5}, REFUSED),
    ({"max_steps": 5, "epochs": 2}, STEPS_OR_EPOCHS),
    ({"batch_size": 4}, ACCEPTED),
    ({"batch_size": 0}, NOT_POSITIVE.format(name="batch_size", value=0)),
    ({"batch_size": MAX_BATCH + 1}, TOO_LARGE.format(name="batch_size", cap=MAX_BATCH, value=MAX_BATCH + 1)),
    ({"learning_rate": 1e-4}, ACCEPTED),
    ({"learning_rate": 0.0}, NOT_POSITIVE.format(name="learning_rate", value=0.0)),
    ({"learning_rate": -1e-05}, NOT_POSITIVE.format(name="learning_rate", value=-1e-05)),
    ({"learning_rate": "nan"}, REFUSED),
    ({"mixed_precision": "no"}, ACCEPTED),
    ({"mixed_precision": "fp16"}, ACCEPTED),
    ({"mixed_precision": "bf16"}, ACCEPTED),
    ({"mixed_precision": "fp32"}, REFUSED),  # the label of "no"
    ({"mixed_precision": "fp8"}, REFUSED),
    ({"lora_rank": 0}, ACCEPTED),
    ({"lora_rank": 8}, ACCEPTED),
    ({"lora_rank": -1}, NEGATIVE.format(name="lora_rank", value=-1)),
    ({"lora_rank": 10**30}, TOO_LARGE.format(name="lora_rank", cap=MAX_RANK, value=10**30)),
    ({"lora_rank": 2.5}, REFUSED),
    ({"seed": 0}, ACCEPTED),
    ({"seed": 123456}, ACCEPTED),
    ({"seed": MAX_SEED}, ACCEPTED),
    ({"seed": -1}, NEGATIVE.format(name="seed", value=-1)),
    ({"seed": 2**70}, TOO_LARGE.format(name="seed", cap=MAX_SEED, value=2**70)),
    ({"checkpoint_every": 0}, ACCEPTED),  # none
    ({"checkpoint_every": 50}, ACCEPTED),
    ({"checkpoint_every": -1}, NEGATIVE.format(name="checkpoint_every", value=-1)),
    (
        {"checkpoint_every": MAX_STEPS + 1},
        TOO_LARGE.format(name="checkpoint_every", cap=MAX_STEPS, value=MAX_STEPS + 1),
    ),
    ({"validation_every": 0}, ACCEPTED),  # never
    ({"validation_every": 25}, ACCEPTED),
    ({"validation_every": -1}, NEGATIVE.format(name="validation_every", value=-1)),
    ({"validation_every": 1.5}, REFUSED),
    ({"validation_prompts": 1}, ACCEPTED),
    ({"validation_prompts": MAX_VALIDATION_PROMPTS}, ACCEPTED),
    ({"validation_prompts": 0}, OUT_OF_RANGE.format(name="validation_prompts", interval="[1, 16]", value=0)),
    (
        {"validation_prompts": 17},
        OUT_OF_RANGE.format(name="validation_prompts", interval="[1, 16]", value=17),
    ),
    # Across options.
    ({"method": "sft", "beta": 5.0}, SFT_TAKES_NO_BETA),
    ({"method": "dpo", "beta": 5.0}, ACCEPTED),
    ({"method": "simpo", "beta": 5.0}, ACCEPTED),
    ({"method": "sft", "pixel_weight": 1.0, "loss_space": "pixel"}, ACCEPTED),
]

GENERATION_CASES = [
    ({"images_per_prompt": 1}, ACCEPTED),
    ({"images_per_prompt": 64}, ACCEPTED),
    ({"images_per_prompt": 0}, OUT_OF_RANGE.format(name="images_per_prompt", interval="[1, 64]", value=0)),
    ({"images_per_prompt": 65}, OUT_OF_RANGE.format(name="images_per_prompt", interval="[1, 64]", value=65)),
    ({"images_per_prompt": 1.5}, REFUSED),
    ({"steps": 1}, ACCEPTED),
    ({"steps": 1000}, ACCEPTED),
    ({"steps": 0}, OUT_OF_RANGE.format(name="steps", interval="[1, 1000]", value=0)),
    ({"steps": 1001}, OUT_OF_RANGE.format(name="steps", interval="[1, 1000]", value=1001)),
    ({"steps": -50}, OUT_OF_RANGE.format(name="steps", interval="[1, 1000]", value=-50)),
    ({"guidance": 0.0}, ACCEPTED),
    ({"guidance": 7.5}, ACCEPTED),
    ({"guidance": -0.5}, NEGATIVE.format(name="guidance", value=-0.5)),
    ({"guidance": "strong"}, REFUSED),
    ({"seed": 0}, ACCEPTED),
    ({"seed": 99}, ACCEPTED),
    ({"seed": -1}, NEGATIVE.format(name="seed", value=-1)),
    ({"seed": 2**70}, TOO_LARGE.format(name="seed", cap=MAX_SEED, value=2**70)),
    ({"steps": 10**30}, OUT_OF_RANGE.format(name="steps", interval="[1, 1000]", value=10**30)),
]

# A form always posts its selects; these are the defaults a browser would send.
SELECTS = {name: option.default for name, option in job_options.TRAINING_OPTIONS.items() if option.choices}


def _form_answer(form_class, values: dict) -> list[str] | None:
    """The form's error messages for ``values`` posted as text, or None if it takes them."""
    form = form_class(data={name: str(value) for name, value in values.items()})
    return None if form.is_valid() else [m for messages in form.errors.values() for m in messages]


def _api_answer(serializer_class, values: dict) -> list[str] | None:
    """The serializer's error messages for ``values`` sent as JSON, or None."""
    serializer = serializer_class(data=values)
    if serializer.is_valid():
        return None
    return [str(m) for messages in serializer.errors.values() for m in messages]


def _cli_answer(command: list[str], build, values: dict) -> list[str] | None:
    """What ``python -m training`` says to these options, or None if it takes them."""
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in values.items()]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            build(build_parser().parse_args([*command, *flags]))
    except SystemExit:
        return [stderr.getvalue()]
    except ValueError as exc:  # the config's check (ConfigError, OptionError)
        return [str(exc)]
    return None


def _assert_agree(answers: dict, outcome: str) -> None:
    if outcome == ACCEPTED:
        assert answers == dict.fromkeys(answers), answers
        return
    assert all(answer is not None for answer in answers.values()), answers
    if outcome != REFUSED:
        for where, messages in answers.items():
            assert any(outcome in m for m in messages), (where, messages)


@pytest.mark.parametrize("values, outcome", TRAINING_CASES)
def test_training_options_are_accepted_and_refused_alike(values, outcome):
    """Form, API and CLI agree on each value of each training option a job takes, and
    on the rules across options."""
    answers = {
        "form": _form_answer(TrainingOptionsForm, {**SELECTS, **values}),
        "api": _api_answer(TrainingOptionFields, values),
        "cli": _cli_answer(["train", "--model=m", "--data=d", "--output-dir=o"], train_config, values),
    }
    _assert_agree(answers, outcome)


@pytest.mark.parametrize("values, outcome", GENERATION_CASES)
def test_generation_options_are_accepted_and_refused_alike(values, outcome):
    """Form, API and CLI agree on each value of each generation option a job takes."""
    answers = {
        "form": _form_answer(GenerationOptionsForm, values),
        "api": _api_answer(GenerationOptionFields, values),
        "cli": _cli_answer(
            ["generate", "--model=m", "--prompts=p", "--output-dir=o"], generate_config, values
        ),
    }
    _assert_agree(answers, outcome)


def test_the_table_covers_every_option_a_job_takes():
    """A new job option needs its rows above."""
    assert {name for values, _ in TRAINING_CASES for name in values} == set(job_options.TRAINING_OPTIONS)
    assert {name for values, _ in GENERATION_CASES for name in values} == set(job_options.GENERATION_OPTIONS)


def test_the_launch_forms_and_serializers_are_built_from_the_declarations():
    """The launch forms and serializers carry the option fields, with the declared
    defaults; CompareForm and the compare serializer add their display size."""
    from evalhub.jobs.api import CompareOptionsSerializer
    from evalhub.jobs.forms import CompareForm

    assert issubclass(TrainingForm, TrainingOptionsForm) and issubclass(GenerationForm, GenerationOptionsForm)
    assert issubclass(TrainingLaunchInputSerializer, TrainingOptionFields)
    assert issubclass(GenerationLaunchInputSerializer, GenerationOptionFields)
    form, api = TrainingForm(), TrainingLaunchInputSerializer()
    for name, option in job_options.TRAINING_OPTIONS.items():
        assert form.fields[name].initial == option.default is TRAIN_OPTIONS[name].default
        assert api.fields[name].default == (empty if option.default is None else option.default)
    assert list(form.fields)[:4] == ["base_version", "study", "sft_data", "version_name"]
    for name in job_options.GENERATION_OPTIONS:
        assert CompareForm().fields[name].initial == GENERATE_OPTIONS[name].default
    assert "display_size" in CompareForm().fields and "display_size" in CompareOptionsSerializer().fields
