"""Import generated images from a JSONL manifest, all or nothing.

One object per line::

    {"prompt": "a red circle", "model": "sd15-base", "seed": 1234, "index": 0,
     "settings": {"steps": 50, "guidance": 7.5}, "image": "images/0001.png"}

``prompt`` is the prompt's text in the chosen prompt set, ``model`` a model version's
name, ``image`` a path relative to the manifest. ``settings`` is optional. Each image is
re-encoded without metadata and stored under a random name (``image_files``). A row that
names a slot already holding the same image is skipped, so re-running an import is safe.
"""

from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from evalhub.catalog import errors
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_files import ImageUnreadable, canonical_png, storage_name
from evalhub.catalog.image_sources import ImageSourceError
from evalhub.catalog.models import GeneratedImage, ModelVersion, PromptSet, new_public_id
from evalhub.catalog.row_checks import json_object, reject_unknown_fields, require_type, required

MANIFEST_FIELDS = ("prompt", "model", "seed", "index", "settings", "image")


@dataclass
class ImageImportResult:
    created: int = 0
    skipped: int = 0
    models_created: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ManifestRow:
    line: int
    prompt: str
    model: str
    seed: int
    index: int
    settings: dict
    image: str


def parse_manifest_row(raw: str, line: int) -> ManifestRow:
    """One manifest line, type-checked."""
    record = json_object(raw, line)
    reject_unknown_fields(record, MANIFEST_FIELDS, line)
    values = {
        "prompt": require_type(required(record, "prompt", line), str, "prompt", "a string", line),
        "model": require_type(required(record, "model", line), str, "model", "a string", line),
        "seed": require_type(required(record, "seed", line), int, "seed", "an integer", line),
        "index": require_type(required(record, "index", line), int, "index", "an integer", line),
        "settings": require_type(record.get("settings", {}), dict, "settings", "an object", line),
        "image": require_type(required(record, "image", line), str, "image", "a string", line),
    }
    for name in ("prompt", "model", "image"):
        if not values[name].strip():
            raise ImportRejected(errors.EMPTY_VALUE.format(field=name), line=line)
    if values["index"] < 0:
        raise ImportRejected(errors.NEGATIVE_INDEX.format(value=values["index"]), line=line)
    return ManifestRow(line=line, **values)


def generated_images_import(
    *, prompt_set: PromptSet, manifest: str, source, create_models: bool = False
) -> ImageImportResult:
    """Import every image the manifest lists into ``prompt_set``.

    The first bad row raises ``ImportRejected`` naming its line; the database rows and
    the files written before it are removed, so nothing of the import remains.
    """
    written: list[str] = []
    try:
        with transaction.atomic():
            result = _import_rows(prompt_set, manifest, source, create_models, written)
        return result
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise


def _import_rows(prompt_set, manifest, source, create_models, written) -> ImageImportResult:
    result = ImageImportResult()
    prompts = {prompt.text: prompt for prompt in prompt_set.prompts.all()}
    models: dict[str, ModelVersion] = {}
    first_line_of_image: dict[str, int] = {}
    first_line_of_slot: dict[tuple, int] = {}
    rows = 0
    for line, raw in enumerate(manifest.splitlines(), start=1):
        if not raw.strip():
            continue
        rows += 1
        row = parse_manifest_row(raw, line)
        prompt = prompts.get(row.prompt.strip())
        if prompt is None:
            raise ImportRejected(
                errors.UNKNOWN_PROMPT.format(text=row.prompt, prompt_set=prompt_set.name), line=line
            )
        model = models.get(row.model) or _model_version(row, create_models, result)
        models[row.model] = model

        slot = (model.pk, prompt.pk, row.index)
        if slot in first_line_of_slot:
            raise ImportRejected(
                errors.DUPLICATE_SLOT_IN_FILE.format(
                    model=model.name, index=row.index, first_line=first_line_of_slot[slot]
                ),
                line=line,
            )
        first_line_of_slot[slot] = line

        image = _canonical_image(source, row)
        if image.sha256 in first_line_of_image:
            raise ImportRejected(
                errors.DUPLICATE_IMAGE_IN_FILE.format(
                    path=row.image, first_line=first_line_of_image[image.sha256]
                ),
                line=line,
            )
        first_line_of_image[image.sha256] = line

        existing = GeneratedImage.objects.filter(model_version=model, prompt=prompt, index=row.index).first()
        if existing is not None:
            if existing.sha256 != image.sha256:
                raise ImportRejected(
                    errors.CONFLICTING_IMAGE.format(model=model.name, index=row.index, prompt=prompt.text),
                    line=line,
                )
            result.skipped += 1
            continue
        twin = (
            GeneratedImage.objects.select_related("model_version", "prompt")
            .filter(sha256=image.sha256)
            .first()
        )
        if twin is not None:
            raise ImportRejected(
                errors.DUPLICATE_IMAGE_STORED.format(
                    path=row.image,
                    sha256=image.sha256[:12],
                    model=twin.model_version.name,
                    prompt=twin.prompt.text,
                ),
                line=line,
            )

        public_id = new_public_id()
        name = default_storage.save(storage_name(public_id), ContentFile(image.png))
        written.append(name)
        GeneratedImage.objects.create(
            public_id=public_id,
            model_version=model,
            prompt=prompt,
            seed=row.seed,
            index=row.index,
            settings=row.settings,
            file=name,
            width=image.width,
            height=image.height,
            sha256=image.sha256,
        )
        result.created += 1
    if rows == 0:
        raise ImportRejected(errors.EMPTY_FILE)
    return result


def _model_version(row: ManifestRow, create_models: bool, result: ImageImportResult) -> ModelVersion:
    name = row.model.strip()
    model = ModelVersion.objects.filter(name=name).first()
    if model is not None:
        return model
    if not create_models:
        raise ImportRejected(errors.UNKNOWN_MODEL.format(name=name), line=row.line)
    result.models_created.append(name)
    return ModelVersion.objects.create(name=name, kind=ModelVersion.Kind.BASE)


def _canonical_image(source, row: ManifestRow):
    try:
        data = source.read(row.image)
    except ImageSourceError as exc:
        raise ImportRejected(str(exc), line=row.line) from None
    try:
        return canonical_png(data)
    except ImageUnreadable as exc:
        raise ImportRejected(
            errors.IMAGE_UNREADABLE.format(path=row.image, error=exc), line=row.line
        ) from None
