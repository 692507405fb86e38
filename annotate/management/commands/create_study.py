"""``python manage.py create_study NAME --kind ab --prompt-set SET --model A --model B``

The study's settings are options built from their declarations (annotate.study_settings):
``--overlap``, ``--lease-seconds``, ``--criteria flaws,appeal`` and so on; each one not
given takes the declared default.
"""

import argparse

from django.core.management.base import BaseCommand, CommandError

from annotate.errors import AnnotationError
from annotate.services import study_create
from annotate.study_settings import AT_CREATION, NAME, Setting
from evalhub.catalog.models import ModelVersion, PromptSet


def add_setting_option(parser: argparse.ArgumentParser, setting: Setting) -> None:
    """``--lease-seconds`` for ``lease_seconds``: typed, with the setting's help and default;
    the service checks the value (and words the refusal) like any other path's."""
    flag = "--" + setting.name.replace("_", "-")
    if setting.type is bool:
        parser.add_argument(flag, action="store_true", default=None, help=setting.help)
        return
    metavar = None
    if setting.choices:
        metavar = ",".join(setting.values) if setting.type is list else "{" + ",".join(setting.values) + "}"
    parser.add_argument(
        flag,
        type=_parse(setting),
        required=setting.required,
        default=None,
        metavar=metavar,
        help=f"{setting.help}{_default(setting)}",
    )


def _parse(setting: Setting):
    """A command-line word as the setting's type: an int, or a comma-separated list."""

    def parse(word: str):
        if setting.type is int:
            try:
                return int(word)
            except ValueError:
                raise argparse.ArgumentTypeError(setting.invalid(word)) from None
        if setting.type is list:
            return [item.strip() for item in word.split(",") if item.strip()]
        return word

    return parse


def _default(setting: Setting) -> str:
    if setting.required or setting.elsewhere or setting.default in (None, ""):
        return ""
    return f" (default: {','.join(setting.default) if setting.type is list else setting.default})"


class Command(BaseCommand):
    help = "Create an annotation study with its tasks."

    def add_arguments(self, parser):
        parser.add_argument("name", help=NAME.help)
        parser.add_argument("--prompt-set", required=True, help="The prompt set's name.")
        parser.add_argument(
            "--model",
            action="append",
            required=True,
            dest="models",
            help="Model version name; give it once for best/worst, twice (A then B) for A/B, "
            "once or more for alignment.",
        )
        for setting in AT_CREATION:
            if setting is not NAME:
                add_setting_option(parser, setting)

    def handle(self, *args, prompt_set, models, **options):
        target = PromptSet.objects.filter(name=prompt_set).first()
        if target is None:
            raise CommandError(f"no prompt set named {prompt_set!r}")
        versions = []
        for model_name in models:
            version = ModelVersion.objects.filter(name=model_name).first()
            if version is None:
                raise CommandError(f"no model version named {model_name!r}")
            versions.append(version)
        try:
            study = study_create(
                prompt_set=target,
                model_versions=versions,
                **{setting.name: options[setting.name] for setting in AT_CREATION},
            )
        except AnnotationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Created study {study.name!r} (id {study.pk}): {study.tasks.count()} tasks, "
            f"{study.overlap} annotators each; annotators see it as {study.title!r}."
        )
