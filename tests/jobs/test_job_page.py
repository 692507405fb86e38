"""What the launch forms, the job page and a trained version's page read like: help texts
with their angle-bracketed words intact, labels with their acronyms right, final metrics
and the chart's legend under readable names."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.forms.utils import pretty_name

from evalhub.catalog.metric_names import METRICS, humanize, metric_name, metric_value, metrics_readable
from evalhub.jobs.forms import CompareForm, GenerationForm, TrainingForm
from evalhub.jobs.models import Job
from evalhub.jobs.option_fields import option_form_field
from evalhub.jobs.selectors import CHART_SERIES, ERROR_SERIES
from tests.factories import ModelVersionFactory
from training.options import GENERATE_OPTIONS, TRAIN_OPTIONS

VERSION_NAME_HELP = "Default: <base>-<method>-job<id>."
# Acronyms and symbols as a label must not spell them: Django's pretty_name("lora_rank").
MISSPELT = re.compile(r"\b(Lora|lora|Lr|lr|Ema|ema|Vae|vae|Sft|sft|Dpo|dpo|Simpo|simpo|Uri|uri|Beta|Gamma)\b")


class _Text(HTMLParser):
    """The text a reader sees: tags dropped, entities decoded."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def label_of(field, name: str) -> str:
    return str(field.label or pretty_name(name))


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def test_help_texts_keep_their_angle_brackets(signed_in, base_version):
    """The version name's help reads "Default: <base>-<method>-job<id>." on the page: escaped
    in the HTML, not swallowed as tags (Django's own field template marks help safe)."""
    html = signed_in.get("/jobs/new/training/").content.decode()
    assert "Default: &lt;base&gt;-&lt;method&gt;-job&lt;id&gt;." in html
    assert VERSION_NAME_HELP in page_text(html)
    assert "Default: --job." not in page_text(html)


@pytest.mark.parametrize("form_class", [TrainingForm, GenerationForm, CompareForm])
def test_every_help_text_reads_as_written(signed_in, base_version, form_class):
    """Each field's help is on its form's page word for word, and tied to its input."""
    version = base_version
    url = {
        TrainingForm: "/jobs/new/training/",
        GenerationForm: f"/jobs/new/generation/{version.pk}/",
        CompareForm: f"/jobs/compare/{version.pk}/",
    }[form_class]
    html = signed_in.get(url).content.decode()
    text = page_text(html)
    for name, field in form_class().fields.items():
        if field.help_text:
            assert str(field.help_text) in text, name
            assert f'aria-describedby="id_{name}_helptext"' in html, name
            assert f'id="id_{name}_helptext"' in html, name


def test_a_version_name_in_a_help_text_is_text(signed_in, monkeypatch):
    """A help text made from data (the compare form names the parent's image sizes) is
    escaped too: a version named like markup shows as its name."""
    parent = ModelVersionFactory(name="<b>parent</b>", weights_uri="/w/p")
    child = ModelVersionFactory(name="child", parent=parent, weights_uri="/w/c")
    monkeypatch.setattr("evalhub.jobs.selectors.image_sizes", lambda model: ["64×64"])
    html = signed_in.get(f"/jobs/compare/{child.pk}/").content.decode()
    assert "<b>parent</b>" not in html
    assert "&lt;b&gt;parent&lt;/b&gt;&#x27;s images: 64×64." in html


def test_option_labels_spell_acronyms_and_symbols(signed_in, base_version):
    """Every option's label as a form shows it: LoRA, LR, EMA, VAE, β, γ, never "Lora rank"."""
    for options in (TRAIN_OPTIONS, GENERATE_OPTIONS):
        for name, option in options.items():
            label = label_of(option_form_field(option), name)
            assert not MISSPELT.search(label), (name, label)
    assert label_of(option_form_field(TRAIN_OPTIONS["lora_rank"]), "lora_rank") == "LoRA rank"
    assert label_of(option_form_field(TRAIN_OPTIONS["ema_decay"]), "ema_decay") == "EMA decay"
    assert label_of(option_form_field(TRAIN_OPTIONS["lr_schedule"]), "lr_schedule") == "LR schedule"
    text = page_text(signed_in.get("/jobs/new/training/").content.decode())
    for label in ("LoRA rank", "β", "SFT data set", "Pixel weight (λ / μ)", "Version name"):
        assert label in text
    assert "SFT DPO SimPO" in text  # the method's choices
    assert not MISSPELT.search(text.replace("sft-data", "")), MISSPELT.search(text)


def test_help_texts_spell_the_methods(base_version):
    """The forms' help texts name the methods as the papers do: SFT, DPO, SimPO."""
    for form_class in (TrainingForm, GenerationForm):
        for name, field in form_class().fields.items():
            help_text = str(field.help_text).replace("sft-data", "")
            assert not re.search(r"\b(sft|dpo|simpo)\b", help_text), (name, help_text)
    assert "Default: 2500 for DPO, 100 for SimPO." in str(TrainingForm().fields["beta"].help_text)


def test_final_metrics_read_as_names_with_units(signed_in):
    """A trained version's final metrics show readable names, units and percentages, and
    a key no one named yet is humanized, never shown raw."""
    version = ModelVersionFactory(
        name="trained",
        final_metrics={
            "step": 100,
            "loss": 0.123456,
            "pixel_loss": 0.05,
            "implicit_acc": 0.75,
            "lr": 1e-05,
            "samples_per_s": 12.5,
            "ema_kl_div": 0.3,
        },
    )
    text = page_text(signed_in.get(f"/catalog/models/{version.pk}/").content.decode())
    expected = (
        "Step 100 · Loss 0.1235 · Pixel loss 0.05 · Implicit accuracy 75.0 % · Learning rate 1e-05 · "
        "Throughput 12.5 samples/s · EMA KL div 0.3"
    )
    assert expected in text
    for raw in ("pixel_loss", "implicit_acc", "samples_per_s", "ema_kl_div"):
        assert raw not in text


def test_metric_names_cover_what_the_trainer_writes():
    """Every key of a trainer record has a name (the chart's series too); values format by kind."""
    record = [
        "step", "epoch", "loss", "latent_loss", "pixel_loss", "implicit_acc_latent", "saturated_latent",
        "implicit_acc_pixel", "saturated_pixel", "implicit_acc", "lr", "grad_norm", "samples_per_s",
        "raw_model_loss", "raw_ref_loss", "reward_margin",
    ]  # fmt: skip
    for part in ("latent", "pixel"):
        record += [f"{key}_{part}" for key in ("model_err_w", "model_err_l", "ref_err_w", "ref_err_l")]
        record.append(f"reward_margin_{part}")
    assert set(record) == set(METRICS)
    assert all(key in METRICS for key in CHART_SERIES + ERROR_SERIES["latent"] + ERROR_SERIES["pixel"])
    assert metric_name("model_err_w_latent") == "Model error (winner, latent)"
    assert metric_name("ref_err_l_pixel") == "Reference error (loser, pixel)"
    assert metric_name("saturated_pixel") == "Saturated logits (pixel)"
    assert humanize("dpo_margin") == "DPO margin" and humanize("simpo_lr") == "SimPO LR"
    assert humanize("vae_grad_norm") == "VAE gradient norm"
    assert metric_value("saturated_latent", 0.125) == "12.5 %"
    assert metric_value("loss", float("nan")) == "nan" and metric_value("note", "diverged") == "diverged"
    assert metrics_readable({"epoch": 2, "grad_norm": 1.23456}) == [
        ("Epoch", "2"),
        ("Gradient norm", "1.235"),
    ]


def test_the_job_page_gives_the_chart_its_legend_names(signed_in):
    """The chart's series and their readable names travel in a data attribute (no inline
    script under the policy); the chart fills the width through its viewBox."""
    job = Job.objects.create(kind=Job.Kind.TRAINING, model_version=ModelVersionFactory(), state="running")
    html = signed_in.get(f"/jobs/{job.pk}/").content.decode()
    match = re.search(r'<svg id="job-chart"[^>]*data-series="([^"]*)"', html)
    assert match is not None
    series = json.loads(match.group(1).replace("&quot;", '"'))
    assert series == {"loss": "Loss", "latent_loss": "Latent loss", "pixel_loss": "Pixel loss"}
    assert 'viewBox="0 0 640 260"' in html and "jobs/job.css" in html
    assert "<script>" not in html and " style=" not in html


def series_of(html: str, chart: str) -> dict | None:
    """The legend names a chart's data attribute carries; None where the page has no such chart."""
    match = re.search(rf'<svg id="{chart}"[^>]*data-series="([^"]*)"', html)
    return json.loads(match.group(1).replace("&quot;", '"')) if match else None


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"method": "dpo", "loss_space": "latent+pixel"}, ERROR_SERIES["latent"]),
        ({"method": "simpo", "loss_space": "pixel"}, ERROR_SERIES["pixel"]),
        ({}, ERROR_SERIES["latent"]),  # the declared defaults: SimPO, latent + pixel
        ({"method": "sft"}, None),
    ],
)
def test_a_preference_job_charts_the_errors_of_its_first_loss_term(signed_in, options, expected):
    """A second chart draws the model's and the reference's errors on winners and losers of
    the loss's first term (latent if it has one), under readable names; none for SFT."""
    job = Job.objects.create(
        kind=Job.Kind.TRAINING, model_version=ModelVersionFactory(), config={"options": options}
    )
    html = signed_in.get(f"/jobs/{job.pk}/").content.decode()
    series = series_of(html, "job-error-chart")
    if expected is None:
        assert series is None and "Errors on winners and losers" not in html
        return
    assert list(series) == list(expected)
    part = expected[0].rsplit("_", 1)[1]
    assert series[f"model_err_w_{part}"] == f"Model error (winner, {part})"
    assert series[f"ref_err_l_{part}"] == f"Reference error (loser, {part})"
    assert 'data-y-title="error"' in html
