"""``python -m training {train,generate,tiny}``.

``train`` and ``generate`` take every field of :class:`~training.config.TrainConfig` and
:class:`~training.generate_config.GenerateConfig` as an option, built from the field's
declaration (:mod:`training.options`: type, choices, default, help). ``train`` can start
from a JSON config file that the options then override.
"""

import argparse
import json
import sys
from dataclasses import fields

from training.config import ConfigError, TrainConfig
from training.generate_config import GenerateConfig
from training.options import Option
from training.pipelines import FAMILIES


def _declared_options(config_class) -> list[Option]:
    return [f.metadata["option"] for f in fields(config_class)]


def _add_option(parser: argparse.ArgumentParser, option: Option, *, required: bool = False) -> None:
    """One ``--flag`` for ``option``; left out, it is ``None`` (the config's default)."""
    help_text = f"{option.help} ({'required' if option.required else f'default: {option.default_text}'})"
    if option.kind is bool:
        parser.add_argument(
            option.flag, dest=option.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
        )
    else:
        parser.add_argument(
            option.flag,
            dest=option.name,
            type=option.kind,
            default=None,
            choices=option.choices or None,
            required=required,
            help=help_text,
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
    for option in _declared_options(TrainConfig):
        _add_option(train, option)  # required ones may come from --config

    gen = commands.add_parser(
        "generate", help="N images per prompt with fixed seeds, plus an import manifest"
    )
    gen.set_defaults(subparser=gen)
    for option in _declared_options(GenerateConfig):
        _add_option(gen, option, required=option.required)

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


def generate_config(args: argparse.Namespace) -> GenerateConfig:
    given = {option.name: getattr(args, option.name) for option in _declared_options(GenerateConfig)}
    return GenerateConfig(**{name: value for name, value in given.items() if value is not None})


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
        from training.generate import generate  # torch: loaded for a run, not for --help

        try:
            manifest = generate(generate_config(args))
        except ValueError as exc:
            args.subparser.error(str(exc))
        print(manifest)
    else:
        from training.tiny import build_tiny_pipeline

        print(build_tiny_pipeline(args.family, args.output_dir, seed=args.seed))
    return 0
