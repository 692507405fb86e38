"""Upload forms of the researcher UI. They check the shape of the input; the import
services check the content and report the offending line."""

from django import forms

from evalhub.catalog.models import ModelVersion, PromptSet


class PromptSetImportForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    file = forms.FileField(help_text="A .csv or .jsonl file; see the README for the columns.")


class ImageImportForm(forms.Form):
    prompt_set = forms.ModelChoiceField(queryset=PromptSet.objects.all())
    archive = forms.FileField(help_text="A .zip holding manifest.jsonl and the image files it names.")
    create_models = forms.BooleanField(
        required=False, help_text="Create model versions the manifest names that do not exist yet."
    )


class ModelVersionForm(forms.ModelForm):
    class Meta:
        model = ModelVersion
        fields = ["name", "kind", "description", "weights_uri", "parent"]
