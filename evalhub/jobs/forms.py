"""The launch forms. Their option fields are built from the trainer's declarations
(:mod:`evalhub.jobs.option_fields`); the model and data choices are declared here."""

from django import forms

from annotate.forms import setting_field as study_setting_field
from annotate.models import Study
from annotate.study_settings import DISPLAY_SIZE
from evalhub.catalog.models import ModelVersion, PromptSet
from evalhub.jobs.folders import sft_data_names
from evalhub.jobs.job_options import GENERATION_OPTIONS, TRAINING_OPTIONS
from evalhub.jobs.option_fields import options_form
from training.options import generate_options_validate, train_options_validate

TrainingOptionsForm = options_form("TrainingOptionsForm", TRAINING_OPTIONS, train_options_validate)
GenerationOptionsForm = options_form("GenerationOptionsForm", GENERATION_OPTIONS, generate_options_validate)


def _sft_data_choices() -> list[tuple[str, str]]:
    """The SFT data sets, read again each time the form is built."""
    return [("", "---------"), *((name, name) for name in sft_data_names())]


class TrainingForm(TrainingOptionsForm):
    field_order = ["base_version", "study", "sft_data", "version_name"]

    base_version = forms.ModelChoiceField(
        ModelVersion.objects.exclude(weights_uri=""),
        help_text="The version to fine-tune (needs a weights folder).",
    )
    study = forms.ModelChoiceField(
        Study.objects.filter(kind=Study.Kind.BEST_WORST),
        required=False,
        help_text="Best/worst-of-five study whose preference pairs are the training data.",
    )
    sft_data = forms.ChoiceField(
        choices=_sft_data_choices,
        required=False,
        label="SFT data set",
        help_text="Or, for SFT: a data set, one of the folders under EVALHUB_JOBS_DIR/sft-data "
        "(metadata.jsonl and its images).",
    )
    version_name = forms.CharField(
        required=False, max_length=200, help_text="Default: <base>-<method>-job<id>."
    )


class GenerationForm(GenerationOptionsForm):
    field_order = ["prompt_set"]

    prompt_set = forms.ModelChoiceField(PromptSet.objects.all())


class CompareForm(GenerationForm):
    # The A/B study's setting, as the study form declares it (annotate.study_settings).
    display_size = study_setting_field(DISPLAY_SIZE)
