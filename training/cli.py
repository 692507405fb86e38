"""``python -m training {train,generate,tiny}``.

``train`` takes every :class:`~training.config.TrainConfig` field as an option (the
``--help`` text comes from the dataclass), optionally starting from a JSON config file
that the options then override.
"""

import argparse
import json
import sys
import types
import typing
from dataclasses import MISSING, fields

from training.config import ConfigError, TrainConfig
from training.models import FAMILIES


def _base_type(annotation):
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = _base_type(f.type)
        default = None if f.default is MISSING else f.default
        help_text = f"{f.metadata['help']} ({'required' if default == '' else f'default: {default}'})"
        if kind is bool:
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            parser.add_argument(
                flag, dest=f.name, type=kind, default=None, choices=f.metadata.get("choices"), help=help_text
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="fine-tune a pipeline with sft, dpo or simpo",
        description="Fine-tune a diffusers pipeline (paper §3). "
        "Multi-GPU: `accelerate launch -m training train ...`.",
    )
    train.set_defaults(subparser=train)
    train.add_argument("--config", help="JSON file of options; command-line options override it")
    _add_config_options(train)

    gen = commands.add_parser(
        "generate", help="N images per prompt with fixed seeds, plus an import manifest"
    )
    gen.set_defaults(subparser=gen)
    gen.add_argument("--model", required=True, help="diffusers pipeline folder")
    gen.add_argument(
        "--prompts", required=True, help=".txt (one per line), .jsonl ('prompt') or .csv ('prompt')"
    )
    gen.add_argument("--output-dir", required=True, help="where images/ and manifest.jsonl go")
    gen.add_argument("--model-name", help="model name written in the manifest (default: the folder's name)")
    gen.add_argument("--images-per-prompt", type=int, default=5, help="images per prompt (default: 5)")
    gen.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
    gen.add_argument(
        "--guidance", type=float, help="classifier-free guidance scale (default: 7.5 U-Net, 4.5 DiT)"
    )
    gen.add_argument("--seed", type=int, default=0, help="seed of the first image (default: 0)")
    gen.add_argument("--resolution", type=int, help="image side in pixels (default: the model's)")
    gen.add_argument("--batch-size", type=int, default=5, help="images per pipeline call (default: 5)")
    gen.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")

    tiny = commands.add_parser("tiny", help="build a tiny random pipeline (tests, demo)")
    tiny.add_argument("family", choices=FAMILIES, help="unet (SD 1.5 style) or dit (PixArt-α style)")
    tiny.add_argument("output_dir", help="folder to save the pipeline into")
    tiny.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    return parser


def train_config(args: argparse.Namespace) -> TrainConfig:
    values = {}
    if args.config:
        values.update(TrainConfig.from_file(args.config).to_dict())
    for f in fields(TrainConfig):
        given = getattr(args, f.name)
        if given is not None:
            values[f.name] = given
    return TrainConfig.from_dict(values)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        from training.trainer import TrainingCancelled, TrainingDiverged, train

        try:
            config = train_config(args)
        except ConfigError as exc:
            args.subparser.error(str(exc))
        try:
            result = train(config)
        except (TrainingDiverged, TrainingCancelled) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except (FileNotFoundError, ValueError) as exc:
            # Bad data, model folder or checkpoint: say what, without a traceback.
            args.subparser.error(str(exc))
        from accelerate import PartialState

        summary = {
            "final_model": str(result.final_model),
            "steps": result.steps,
            "data_hash": result.data_hash,
        }
        if PartialState().is_main_process:  # under torchrun / accelerate launch, print once
            print(json.dumps(summary))
    elif args.command == "generate":
        from training.generate import GenerateConfig, generate

        options = {k: v for k, v in vars(args).items() if k not in ("command", "subparser")}
        try:
            manifest = generate(GenerateConfig(**options))
        except ValueError as exc:
            args.subparser.error(str(exc))
        print(manifest)
    else:
        from training.tiny import build_tiny_pipeline

        print(build_tiny_pipeline(args.family, args.output_dir, seed=args.seed))
    return 0
