"""Where a run's files lie under its ``output_dir``, declared once: the trainer writes them
and the web app's job pages read them. No torch here (like :mod:`training.options`), so the
web process can import it."""

METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"  # the validation renders (training.validation)
SAMPLE_PROMPTS_FILE = "prompts.json"  # under SAMPLES_DIR: prompts, seeds, steps, guidance


def sample_step_dir(step: int) -> str:
    """The folder, under :data:`SAMPLES_DIR`, of the renders after optimizer step ``step``."""
    return f"step-{step:06d}"


def sample_image_name(index: int) -> str:
    """The file of prompt ``index``'s render in a step's folder."""
    return f"{index:02d}.png"
