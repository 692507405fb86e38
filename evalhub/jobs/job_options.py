"""The trainer's and the generator's options a job takes, as ``training.options`` declares
them (type, bounds, default, help): the launch forms, the API fields, the launch checks and
the runner all read them from here."""

from training.options import GENERATE_OPTIONS, TRAIN_OPTIONS

TRAINING_OPTIONS = {
    name: TRAIN_OPTIONS[name]
    for name in (
        "method",
        "loss_space",
        "pixel_weight",
        "beta",
        "max_steps",
        "epochs",
        "batch_size",
        "learning_rate",
        "mixed_precision",
        "lora_rank",
        "seed",
        "validation_every",
        "validation_prompts",
        "checkpoint_every",
    )
}
GENERATION_OPTIONS = {
    name: GENERATE_OPTIONS[name] for name in ("images_per_prompt", "steps", "guidance", "seed")
}
