"""Upload forms of the researcher UI. They check the shape of the input; the import
services check the content and report the offending line."""

from django import forms
from django.template.defaultfilters import filesizeformat

from evalhub.catalog import limits
from evalhub.catalog.models import ModelVersion, PromptSet


class PromptSetImportForm(forms.Form):
    name = forms.CharField(max_length=PromptSet._meta.get_field("name").max_length)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    file = forms.FileField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = (
            f"A .csv or .jsonl file of at most {filesizeformat(limits.MAX_TEXT_FILE_BYTES.value)}; "
            "see the README for the columns."
        )


class ImageImportForm(forms.Form):
    prompt_set = forms.ModelChoiceField(queryset=PromptSet.objects.all())
    archive = forms.FileField()
    create_models = forms.BooleanField(
        required=False, help_text="Create model versions the manifest names that do not exist yet."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["archive"].help_text = (
            f"A .zip of at most {filesizeformat(limits.MAX_UPLOAD_BYTES.value)} holding manifest.jsonl "
            f"and the image files it names (each at most {filesizeformat(limits.MAX_IMAGE_BYTES.value)} "
            f"and {limits.MAX_IMAGE_PIXELS.value / 1e6:g} megapixels). An archive above "
            f"{filesizeformat(limits.IMPORT_INLINE_MAX_BYTES.value)} is imported in the background, "
            "as a job whose page shows its progress."
        )


class ModelVersionForm(forms.ModelForm):
    class Meta:
        model = ModelVersion
        fields = ["name", "kind", "description", "weights_uri", "parent"]
        labels = {"weights_uri": "Weights URI"}
