"""The researcher's study form: a field per study setting, built from its declaration
(annotate.study_settings), and the prompt set and models; the service checks what a field
cannot (how the settings go with the kind, the models and the images)."""

from django import forms

from annotate.models import Study
from annotate.study_settings import AT_CREATION, Setting
from evalhub.catalog.models import ModelVersion, PromptSet

WIDGETS = {"guidelines": forms.Textarea(attrs={"rows": 3})}


def setting_field(setting: Setting) -> forms.Field:
    """A form field for a study setting: its type, bounds, choices, initial value, help,
    and its refusals worded as the service words them."""
    options = {
        "label": setting.label or None,
        "help_text": setting.help,
        "required": setting.required,
        "error_messages": _wording(setting),
    }
    if not setting.required and not setting.elsewhere:
        options["initial"] = setting.default
    if setting.name in WIDGETS:
        options["widget"] = WIDGETS[setting.name]
    if setting.type is int:
        return forms.IntegerField(min_value=setting.low, max_value=setting.high, **options)
    if setting.type is bool:
        return forms.BooleanField(**options)
    if setting.type is list:
        return forms.MultipleChoiceField(
            choices=setting.choices, widget=forms.CheckboxSelectMultiple, **options
        )
    if setting.choices:
        # Empty, where it may be, stands for the default (exposure: isolated in A/B).
        empty = [] if setting.required else [("", "—")]
        return forms.ChoiceField(choices=empty + list(setting.choices), **options)
    validators = [setting.validate] if setting.pattern is not None else []
    return forms.CharField(max_length=setting.max_length, validators=validators, **options)


def _wording(setting: Setting) -> dict[str, str]:
    """Django's messages for what the declaration bounds, in the service's words (Django
    fills in ``%(value)s``)."""
    wording = {}
    if setting.invalid is not None:
        invalid = setting.invalid("%(value)s")
        wording.update(min_value=invalid, max_value=invalid, invalid_choice=invalid)
    if setting.max_length is not None:
        wording["max_length"] = setting.too_long
    if setting.empty and not setting.blank:
        wording["required"] = setting.empty
    return wording


StudySettingsForm = type(
    "StudySettingsForm", (forms.Form,), {setting.name: setting_field(setting) for setting in AT_CREATION}
)


class StudyForm(StudySettingsForm):
    prompt_set = forms.ModelChoiceField(queryset=PromptSet.objects.all())
    model_a = forms.ModelChoiceField(
        queryset=ModelVersion.objects.all(),
        label="Model (A)",
        help_text="The model of a best/worst study, model A of an A/B study, or the first of an "
        "alignment study.",
    )
    model_b = forms.ModelChoiceField(
        queryset=ModelVersion.objects.all(),
        required=False,
        label="Model B",
        help_text="A/B: the model compared with A. Alignment: an optional second model.",
    )

    field_order = ["name", "title", "kind", "prompt_set", "model_a", "model_b"]  # then the other settings

    def settings(self) -> dict:
        """The study's settings, as ``study_create`` takes them (None: left to the default)."""
        return {setting.name: self.cleaned_data[setting.name] for setting in AT_CREATION}

    def model_versions(self) -> list[ModelVersion]:
        models = [self.cleaned_data["model_a"]]
        if self.cleaned_data.get("model_b") and self.cleaned_data["kind"] != Study.Kind.BEST_WORST:
            models.append(self.cleaned_data["model_b"])
        return models
