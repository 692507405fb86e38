"""The dtype each part trains in, whatever the checkpoint was saved in (training.precision)."""

import pytest
import torch
from safetensors.torch import load_file

import training.trainer
from training.config import TrainConfig
from training.models import load_pipeline
from training.precision import part_dtypes, place
from training.trainer import train


@pytest.fixture(scope="module")
def fp16_saved(tiny_models, tmp_path_factory) -> dict:
    """The tiny pipelines saved in fp16, as half-precision checkpoints are often published."""
    root = tmp_path_factory.mktemp("fp16")
    for family in ("unet", "dit"):
        load_pipeline(tiny_models[family]).to(torch.float16).save_pretrained(root / family)
    return {family: root / family for family in ("unet", "dit")}


def trained_pipeline(model, data, out, monkeypatch, **options):
    """Train one step and return the pipeline as the trainer held it (text encoder included)."""
    seen = {}
    real = training.trainer.text_conditioning

    def spy(pipeline, captions, device):
        seen["pipeline"] = pipeline
        return real(pipeline, captions, device)

    monkeypatch.setattr(training.trainer, "text_conditioning", spy)
    config = TrainConfig(
        model=str(model),
        data=str(data),
        output_dir=str(out),
        max_steps=1,
        batch_size=2,
        validation_every=0,
        **options,
    )
    return train(config), seen["pipeline"]


def dtypes_of(module: torch.nn.Module) -> set:
    return {t.dtype for t in module.parameters()}


def test_an_fp16_checkpoint_trains_in_fp32_without_mixed_precision(
    fp16_saved, pairs_folder, tmp_path, monkeypatch
):
    """Every part is cast to the run's fp32, the text encoder too, and the final weights are fp32."""
    result, pipeline = trained_pipeline(
        fp16_saved["unet"], pairs_folder, tmp_path, monkeypatch, method="simpo"
    )
    for part in (pipeline.text_encoder, pipeline.vae, pipeline.unet):
        assert dtypes_of(part) == {torch.float32}, type(part).__name__
    saved = load_file(result.final_model / "unet/diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in saved.values()} == {torch.float32}


def test_fp16_mixed_precision_keeps_the_vae_and_t5s_fp32_modules_in_fp32(
    fp16_saved, pairs_folder, tmp_path, monkeypatch
):
    """Under fp16 the T5 encoder is fp16 except its ``wo`` projections, the VAE fp32, the DiT fp32."""
    _, pipeline = trained_pipeline(
        fp16_saved["dit"], pairs_folder, tmp_path, monkeypatch, method="simpo", mixed_precision="fp16"
    )
    encoder = {name: t.dtype for name, t in pipeline.text_encoder.named_parameters()}
    assert {d for name, d in encoder.items() if ".wo." in name} == {torch.float32}
    assert {d for name, d in encoder.items() if ".wo." not in name} == {torch.float16}
    assert dtypes_of(pipeline.vae) == {torch.float32}
    assert dtypes_of(pipeline.transformer) == {torch.float32}


@pytest.mark.parametrize(
    "mixed_precision, vae_dtype, lora, expected",
    [
        ("no", "auto", False, (torch.float32, torch.float32, torch.float32)),
        ("fp16", "auto", False, (torch.float16, torch.float32, torch.float32)),
        ("fp16", "bf16", True, (torch.float16, torch.bfloat16, torch.float16)),
        ("bf16", "auto", False, (torch.bfloat16, torch.bfloat16, torch.float32)),
        ("bf16", "fp32", True, (torch.bfloat16, torch.float32, torch.bfloat16)),
    ],
)
def test_part_dtypes_never_put_the_vae_in_fp16(mixed_precision, vae_dtype, lora, expected):
    """(frozen parts, VAE, denoiser as loaded) for each precision option; the VAE is never fp16."""
    dtypes = part_dtypes(mixed_precision, vae_dtype, lora)
    assert (dtypes.frozen, dtypes.vae, dtypes.denoiser) == expected


def test_place_casts_whenever_the_dtype_differs():
    """A module is cast to fp32 too (not only away from it), and left alone when it already fits."""
    module = torch.nn.Linear(2, 2).to(torch.float16)
    assert dtypes_of(place(module, "cpu", torch.float32)) == {torch.float32}
    weight = module.weight
    place(module, "cpu", torch.float32)
    assert module.weight is weight
