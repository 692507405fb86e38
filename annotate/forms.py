"""The researcher's study form: a field per study setting, built from its declaration
(annotate.study_settings), and the prompt set and models; the service checks what a field
cannot (how the settings go with the kind, the models and the images).

Each field knows the kinds of study it applies to (``FIELD_KINDS``): the template marks
its wrapper with them and ``annotate/study_form.js`` shows only the chosen kind's fields.
A refusal of the service that names a field is shown by that field (``service_error``)."""

import re
import string

from django import forms

from annotate import errors
from annotate.errors import AnnotationError
from annotate.models import Study
from annotate.study_settings import ALL_KINDS, AT_CREATION, Setting
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
    validators = [setting.validate] if setting.pattern is not None or setting.matches is not None else []
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

# The kinds of study each field applies to; a field not named applies to every kind.
FIELD_KINDS: dict[str, tuple[str, ...]] = {
    **{setting.name: setting.kinds for setting in AT_CREATION},
    "model_b": (Study.Kind.AB,),
    "more_models": (Study.Kind.ALIGNMENT,),
}


def _pattern(template: str) -> re.Pattern:
    """A message template of annotate.errors as a pattern: its ``{name}`` fields as groups."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(f"(?P<{name}>.*?)")
    return re.compile("".join(parts), re.DOTALL)


# Which field a refusal of the service belongs to: a field name, or the message field
# (``{setting}``, ``{field}``) that names it; the first pattern the message fits decides.
# The others (missing images, no tasks) are the form's own.
_FIELD_OF_ERROR = [
    (_pattern(template), field)
    for template, field in (
        (errors.STUDY_NAME_TAKEN, "name"),
        (errors.NAME_EMPTY, "name"),
        (errors.TITLE_EMPTY, "title"),
        (errors.WRONG_MODEL_COUNT, "model_b"),
        (errors.SAME_MODEL_TWICE, "model_b"),
        (errors.NO_CRITERIA, "criteria"),
        (errors.UNKNOWN_CRITERION, "criteria"),
        (errors.OVERLAP_RANGE, "overlap"),
        (errors.LEASE_RANGE, "lease_seconds"),
        (errors.IMAGE_INDEX_RANGE, "image_index"),
        (errors.EXPOSURE_NOT_AB, "exposure"),
        (errors.UNKNOWN_EXPOSURE, "exposure"),
        (errors.DISPLAY_SIZE_FORMAT, "display_size"),
        (errors.DISPLAY_SIZE_NOT_AB, "display_size"),
        (errors.AB_SIZES_DIFFER, "display_size"),
        # Last: the general patterns, which more specific messages also fit.
        (errors.NAMES_A_MODEL, "{field}"),
        (errors.TOO_LONG, "{setting}"),
        (errors.NOT_ONE_OF, "{setting}"),
        (errors.WRONG_TYPE, "{setting}"),
    )
]


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
        help_text="A/B only: the model compared with A.",
    )
    more_models = forms.ModelMultipleChoiceField(
        queryset=ModelVersion.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="More models",
        help_text="Alignment only: further models, each with tasks of its own images.",
    )

    field_order = [
        "name",
        "title",
        "kind",
        "prompt_set",
        "model_a",
        "model_b",
        "more_models",
    ]  # then the rest

    def settings(self) -> dict:
        """The study's settings, as ``study_create`` takes them (None: left to the default)."""
        return {setting.name: self.cleaned_data[setting.name] for setting in AT_CREATION}

    def model_versions(self) -> list[ModelVersion]:
        """The models the kind takes: model A alone (best/worst), A and B (A/B; a missing B
        is the service's to refuse), or A and the further models (alignment)."""
        models = [self.cleaned_data["model_a"]]
        kind = self.cleaned_data["kind"]
        if kind == Study.Kind.AB and self.cleaned_data.get("model_b"):
            models.append(self.cleaned_data["model_b"])
        if kind == Study.Kind.ALIGNMENT:
            models += [m for m in self.cleaned_data.get("more_models", []) if m not in models]
        return models

    def service_error(self, exc: AnnotationError) -> None:
        """Show a refusal of ``study_create`` by the field it names, else above the form."""
        self.add_error(error_field(exc.message, self.fields), exc.message)

    def rows(self) -> list[tuple[forms.BoundField, str]]:
        """Each visible field with the kinds it applies to, space-separated ("" for all)."""
        return [(field, " ".join(field_kinds(field.name))) for field in self.visible_fields()]

    def sections(self) -> list[tuple[str, list[tuple[forms.BoundField, str]]]]:
        """The rows under their headings: the study itself first, then who may work on it,
        quality control and crowd participants, folded away unless one has an error."""
        sections: dict[str, list] = {title: [] for title in SECTION_TITLES}
        for field, kinds in self.rows():
            title = next((t for prefix, t in SECTION_PREFIXES if field.name.startswith(prefix)), "")
            sections[title].append((field, kinds))
        return [(title, rows) for title, rows in sections.items() if rows]


# Headings of the form's sections, by the settings' name prefixes ("": the study itself).
SECTION_PREFIXES = (
    ("access", "Who may work on it"),
    ("quality_", "Quality control"),
    ("quiz_", "Quality control"),
    ("gold_", "Quality control"),
    ("crowd_", "Crowd participants"),
)
SECTION_TITLES = ("", "Who may work on it", "Quality control", "Crowd participants")


def field_kinds(name: str) -> tuple[str, ...]:
    """The kinds a field applies to; () when it applies to every kind."""
    kinds = FIELD_KINDS.get(name, ALL_KINDS)
    return () if set(kinds) == set(ALL_KINDS) else tuple(kinds)


def error_field(message: str, fields) -> str | None:
    """The field of ``fields`` a service message belongs to, or None (the form's own)."""
    for pattern, field in _FIELD_OF_ERROR:
        match = pattern.fullmatch(message)
        if match is None:
            continue
        if field.startswith("{"):
            field = match.group(field.strip("{}"))
        return field if field in fields else None
    return None
