from django import forms

from annotate.models import Study
from evalhub.catalog.models import ModelVersion, PromptSet


class TrainingForm(forms.Form):
    base_version = forms.ModelChoiceField(
        ModelVersion.objects.exclude(weights_uri=""),
        help_text="The version to fine-tune (needs a weights folder).",
    )
    study = forms.ModelChoiceField(
        Study.objects.filter(kind=Study.Kind.BEST_WORST),
        required=False,
        help_text="Best/worst-of-five study whose preference pairs are the training data.",
    )
    sft_data = forms.CharField(
        required=False,
        label="SFT data folder",
        help_text="Or, for SFT: a folder with metadata.jsonl and images.",
    )
    version_name = forms.CharField(
        required=False, max_length=200, help_text="Default: <base>-<method>-job<id>."
    )
    method = forms.ChoiceField(choices=[("simpo", "SimPO"), ("dpo", "DPO"), ("sft", "SFT")], initial="simpo")
    loss_space = forms.ChoiceField(
        choices=[("latent+pixel", "latent + pixel"), ("latent", "latent"), ("pixel", "pixel")],
        initial="latent+pixel",
    )
    pixel_weight = forms.FloatField(
        required=False, min_value=0, help_text="λ / μ; default 8 for a DiT, 2 for a U-Net."
    )
    beta = forms.FloatField(required=False, min_value=0, help_text="Default 2500 (DPO), 100 (SimPO).")
    max_steps = forms.IntegerField(initial=100, min_value=1)
    batch_size = forms.IntegerField(initial=1, min_value=1)
    learning_rate = forms.FloatField(initial=1e-5, min_value=0)
    mixed_precision = forms.ChoiceField(
        choices=[("no", "fp32"), ("bf16", "bf16"), ("fp16", "fp16")], initial="no"
    )
    lora_rank = forms.IntegerField(initial=0, min_value=0, help_text="0 trains all weights.")
    seed = forms.IntegerField(
        initial=0, min_value=0, required=False, help_text="Same seed, data and settings: same run."
    )


class GenerationForm(forms.Form):
    prompt_set = forms.ModelChoiceField(PromptSet.objects.all())
    images_per_prompt = forms.IntegerField(initial=5, min_value=1, max_value=64)
    steps = forms.IntegerField(initial=50, min_value=1, max_value=1000, help_text="DDIM steps.")
    guidance = forms.FloatField(required=False, min_value=0, help_text="Default 7.5 (U-Net), 4.5 (DiT).")
    seed = forms.IntegerField(initial=0, min_value=0)


class CompareForm(GenerationForm):
    display_size = forms.CharField(
        max_length=20,
        required=False,
        help_text="WIDTHxHEIGHT: serve both versions' A/B images resampled to this size. Needed when "
        "their sizes differ (the size would tell the sides apart); the smaller size keeps both sharp.",
    )
