"""The researcher's study form; the service checks what the form cannot."""

from django import forms

from annotate.models import Study
from evalhub.catalog.models import ModelVersion, PromptSet


class StudyForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="For researchers; annotators never see it.")
    title = forms.CharField(
        max_length=200,
        required=False,
        label="Title for annotators",
        help_text="Leave empty for a neutral title from the kind and criteria. It must not name a model.",
    )
    kind = forms.ChoiceField(choices=Study.Kind.choices)
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
    criteria = forms.MultipleChoiceField(
        choices=[("flaws", "Visual flaws"), ("appeal", "Visual appeal")],
        initial=["flaws", "appeal"],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="A/B only.",
    )
    overlap = forms.IntegerField(min_value=1, max_value=50, initial=5, help_text="Annotators per task (N).")
    lease_seconds = forms.IntegerField(
        min_value=30,
        max_value=3600,
        initial=300,
        help_text="How long a task stays with an annotator without a heartbeat.",
    )
    image_index = forms.IntegerField(
        min_value=0, initial=0, help_text="A/B and alignment: which of a prompt's images is shown."
    )
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Leave empty for the default guidelines of the kind.",
    )
    skip_incomplete = forms.BooleanField(
        required=False, help_text="Leave out prompts without the images a task needs."
    )
    exposure = forms.ChoiceField(
        choices=Study.Exposure.choices,
        initial=Study.Exposure.ISOLATED,
        required=False,
        help_text="A/B only. Isolated: nobody judges an image blind that they saw with its prompt "
        "or in a one-model study, nor the reverse (needs a larger annotator pool). Shared: no such rule.",
    )
    display_size = forms.CharField(
        max_length=20,
        required=False,
        help_text="A/B only, as WIDTHxHEIGHT: serve both models' images resampled to this size "
        "(needed when their sizes differ).",
    )

    def model_versions(self) -> list[ModelVersion]:
        models = [self.cleaned_data["model_a"]]
        if self.cleaned_data.get("model_b") and self.cleaned_data["kind"] != Study.Kind.BEST_WORST:
            models.append(self.cleaned_data["model_b"])
        return models
