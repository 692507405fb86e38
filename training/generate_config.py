"""What a generation run takes (:class:`GenerateConfig`), apart from the run itself
(:mod:`training.generate`, which loads torch): the command line builds its options from
these fields and ``python -m training --help`` answers without importing torch."""

from dataclasses import dataclass

from training.options import GENERATE_OPTIONS, REQUIRED, Option, generate_options_validate, option_field


def _opt(name: str):
    return option_field(GENERATE_OPTIONS[name])


def _run_input(name: str, help_text: str, required: bool = True, default_text: str = ""):
    """A path or name for this run (declared here: no job form takes one)."""
    option = Option(
        name, str, "" if required else None, help_text, required=required, derived_default=default_text
    )
    return option_field(option)


@dataclass(frozen=True)
class GenerateConfig:
    """One generation run; the options are declared in :mod:`training.options`."""

    model: str = _run_input("model", "diffusers pipeline folder")
    prompts: str = _run_input("prompts", ".txt (one per line), .jsonl ('prompt') or .csv ('prompt')")
    output_dir: str = _run_input("output_dir", "where images/ and manifest.jsonl go")
    model_name: str | None = _run_input(
        "model_name", "model name written in the manifest", required=False, default_text="the folder's name"
    )
    images_per_prompt: int = _opt("images_per_prompt")
    steps: int = _opt("steps")
    guidance: float | None = _opt("guidance")
    seed: int = _opt("seed")
    resolution: int | None = _opt("resolution")
    batch_size: int = _opt("batch_size")
    device: str | None = _run_input(
        "device", "cpu, cuda, cuda:1, ...", required=False, default_text="cuda if available"
    )

    def __post_init__(self):
        for name in ("model", "prompts", "output_dir"):
            if not getattr(self, name):
                raise ValueError(REQUIRED.format(name=name))
        generate_options_validate({name: getattr(self, name) for name in GENERATE_OPTIONS})
