"""Import generated images from a JSONL manifest, all or nothing.

One object per line::

    {"prompt": "a red circle", "model": "sd15-base", "seed": 1234, "index": 0,
     "settings": {"steps": 50, "guidance": 7.5}, "image": "images/0001.png"}

``prompt`` is the prompt's text in the chosen prompt set, ``model`` a model version's
name, ``image`` a path relative to the manifest. ``settings`` is optional. Each image is
re-encoded without metadata and stored under a random name (``image_files``). A row that
names a slot already holding the same image is skipped, so re-running an import is safe.

The database's write lock is held for the rows alone, not for the decoding: first every
row is parsed and checked against the catalog with plain reads (prompts, model versions,
occupied slots); then each image is read, decoded, re-encoded, hashed and stored; last,
the rows are written in one short transaction that checks again what another import may
have changed meanwhile. The files of an import that fails are removed.
"""

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from evalhub.catalog import errors, limits
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_files import (
    CanonicalImage,
    ImageTooLarge,
    ImageUnreadable,
    canonical_png,
    storage_name,
)
from evalhub.catalog.image_sources import ImageSourceError
from evalhub.catalog.models import GeneratedImage, ModelVersion, Prompt, PromptSet, new_public_id
from evalhub.catalog.row_checks import (
    clean_json_values,
    clean_text,
    json_object,
    reject_unknown_fields,
    require_int_in,
    require_type,
    required,
)

MANIFEST_FIELDS = ("prompt", "model", "seed", "index", "settings", "image")
MAX_MODEL_NAME = ModelVersion._meta.get_field("name").max_length
# Values per "IN (...)" of one query: SQLite caps the parameters of a statement.
_BATCH = 500


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
        clean_text(values[name], name, line, multiline=name == "prompt")
        if not values[name].strip():
            raise ImportRejected(errors.EMPTY_VALUE.format(field=name), line=line)
    values["model"] = values["model"].strip()
    if len(values["model"]) > MAX_MODEL_NAME:
        raise ImportRejected(errors.TOO_LONG.format(field="model", limit=MAX_MODEL_NAME), line=line)
    require_int_in(values["seed"], "seed", limits.SEED_RANGE, line)
    require_int_in(values["index"], "index", limits.POSITION_RANGE, line)
    clean_json_values(values["settings"], "settings", line)
    return ManifestRow(line=line, **values)


@dataclass(frozen=True)
class _Planned:
    """A row whose image is ready: stored under ``file``, or none where its slot already
    holds the same image. The PNG's bytes are not kept: they are in the file."""

    row: ManifestRow
    prompt: Prompt
    sha256: str
    width: int
    height: int
    public_id: str = ""
    file: str = ""

    @property
    def slot(self) -> tuple[str, int, int]:
        return (self.row.model, self.prompt.pk, self.row.index)


def generated_images_import(
    *, prompt_set: PromptSet, manifest: str, source, create_models: bool = False
) -> ImageImportResult:
    """Import every image the manifest lists into ``prompt_set``.

    The first bad row raises ``ImportRejected`` naming its line; the database rows and
    the files written before it are removed, so nothing of the import remains.
    """
    return generated_images_import_rows(
        prompt_set=prompt_set, rows=_manifest_rows(manifest), source=source, create_models=create_models
    )


def generated_images_import_rows(
    *, prompt_set: PromptSet, rows: list[ManifestRow], source, create_models: bool = False
) -> ImageImportResult:
    """:func:`generated_images_import` of rows already parsed, all or nothing.

    Each row keeps the line it was read from, so a part of a longer manifest (a chunk of
    ``image_import_stream``) reports the lines of the whole file.
    """
    written: list[str] = []
    try:
        prompts, held = _check_against_catalog(prompt_set, rows, create_models)
        first_line_of_image: dict[str, int] = {}
        planned = [
            _prepare(source, row, prompt, held, first_line_of_image, written)
            for row, prompt in zip(rows, prompts, strict=True)
        ]
        result, unused = _write_rows(planned, create_models)
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    for name in unused:
        default_storage.delete(name)
    return result


def _manifest_rows(manifest: str) -> list[ManifestRow]:
    rows = [
        parse_manifest_row(raw, line)
        for line, raw in enumerate(manifest.splitlines(), start=1)
        if raw.strip()
    ]
    if not rows:
        raise ImportRejected(errors.EMPTY_FILE)
    return rows


def _check_against_catalog(
    prompt_set: PromptSet, rows: list[ManifestRow], create_models: bool
) -> tuple[list[Prompt], dict[tuple, str]]:
    """Each row's prompt, and the images its slots already hold; reads only, before any
    image is decoded, so an unknown prompt or model costs nothing."""
    by_text = {prompt.text: prompt for prompt in prompt_set.prompts.all()}
    models = _models_named({row.model for row in rows})
    prompts: list[Prompt] = []
    first_line_of_slot: dict[tuple, int] = {}
    for row in rows:
        prompt = by_text.get(row.prompt.strip())
        if prompt is None:
            raise ImportRejected(
                errors.UNKNOWN_PROMPT.format(text=row.prompt, prompt_set=prompt_set.name), line=row.line
            )
        if row.model not in models and not create_models:
            raise ImportRejected(errors.UNKNOWN_MODEL.format(name=row.model), line=row.line)
        slot = (row.model, prompt.pk, row.index)
        if slot in first_line_of_slot:
            raise ImportRejected(
                errors.DUPLICATE_SLOT_IN_FILE.format(
                    model=row.model, index=row.index, first_line=first_line_of_slot[slot]
                ),
                line=row.line,
            )
        first_line_of_slot[slot] = row.line
        prompts.append(prompt)
    return prompts, _held_slots(models.values(), {prompt.pk for prompt in prompts})


def _prepare(source, row, prompt, held, first_line_of_image, written) -> _Planned:
    """Decode, re-encode and store the row's image, outside any transaction."""
    data = _read_image(source, row)
    # Identical bytes hold identical pixels: a repeated file is refused before decoding.
    _first_sight("file:" + hashlib.sha256(data).hexdigest(), row, first_line_of_image)
    image = _decode_image(data, row)
    _first_sight(image.sha256, row, first_line_of_image)
    planned = _Planned(row=row, prompt=prompt, sha256=image.sha256, width=image.width, height=image.height)
    if planned.slot in held:
        _check_held(planned, held[planned.slot])
        return planned  # already imported: skipped
    twin = (
        GeneratedImage.objects.select_related("model_version", "prompt").filter(sha256=image.sha256).first()
    )
    if twin is not None:
        if (twin.model_version.name, twin.prompt_id, twin.index) == planned.slot:
            return planned  # imported into this very slot since the check: skipped
        raise _duplicate_stored(planned, twin)
    public_id = new_public_id()
    name = default_storage.save(storage_name(public_id), ContentFile(image.png))
    written.append(name)
    return replace(planned, public_id=public_id, file=name)


def _write_rows(planned: list[_Planned], create_models: bool) -> tuple[ImageImportResult, list[str]]:
    """The rows, in one short transaction, after checking again what the reads found;
    returns the result and the stored files an identical concurrent import made unneeded."""
    result, unused, new = ImageImportResult(), [], []
    with transaction.atomic():
        models = _models_for(planned, create_models, result)
        held = _held_slots(models.values(), {p.prompt.pk for p in planned})
        twins = _stored_with_sha(p.sha256 for p in planned if p.file)
        for p in planned:
            if p.slot in held:
                _check_held(p, held[p.slot])
                result.skipped += 1
                if p.file:
                    unused.append(p.file)
                continue
            if not p.file:  # the image it held was removed since the check
                raise ImportRejected(errors.CATALOG_CHANGED, line=p.row.line)
            if p.sha256 in twins:
                raise _duplicate_stored(p, twins[p.sha256])
            new.append(
                GeneratedImage(
                    public_id=p.public_id,
                    model_version=models[p.row.model],
                    prompt=p.prompt,
                    seed=p.row.seed,
                    index=p.row.index,
                    settings=p.row.settings,
                    file=p.file,
                    width=p.width,
                    height=p.height,
                    sha256=p.sha256,
                )
            )
        try:
            GeneratedImage.objects.bulk_create(new, batch_size=_BATCH)
        except IntegrityError:  # written by a concurrent import after the checks above
            raise ImportRejected(errors.CATALOG_CHANGED) from None
    result.created = len(new)
    return result, unused


def _models_for(planned: list[_Planned], create_models: bool, result: ImageImportResult) -> dict:
    """The rows' model versions by name, those missing created where allowed."""
    models = _models_named({p.row.model for p in planned})
    for p in planned:
        if p.row.model in models:
            continue
        if not create_models:  # deleted since the check
            raise ImportRejected(errors.UNKNOWN_MODEL.format(name=p.row.model), line=p.row.line)
        model, created = ModelVersion.objects.get_or_create(
            name=p.row.model, defaults={"kind": ModelVersion.Kind.BASE}
        )
        models[model.name] = model
        if created:
            result.models_created.append(model.name)
    return models


def _check_held(planned: _Planned, held_sha256: str) -> None:
    if held_sha256 != planned.sha256:
        raise ImportRejected(
            errors.CONFLICTING_IMAGE.format(
                model=planned.row.model, index=planned.row.index, prompt=planned.prompt.text
            ),
            line=planned.row.line,
        )


def _duplicate_stored(planned: _Planned, twin: GeneratedImage) -> ImportRejected:
    return ImportRejected(
        errors.DUPLICATE_IMAGE_STORED.format(
            path=planned.row.image,
            sha256=planned.sha256[:12],
            model=twin.model_version.name,
            prompt=twin.prompt.text,
        ),
        line=planned.row.line,
    )


def _batches(values: Iterable) -> Iterator[list]:
    values = list(values)
    for start in range(0, len(values), _BATCH):
        yield values[start : start + _BATCH]


def _models_named(names: set[str]) -> dict[str, ModelVersion]:
    return {
        model.name: model
        for batch in _batches(sorted(names))
        for model in ModelVersion.objects.filter(name__in=batch)
    }


def _held_slots(models: Iterable[ModelVersion], prompt_ids: set[int]) -> dict[tuple, str]:
    """The sha256 of the image each (model name, prompt id, index) slot holds, for these
    models and prompts."""
    names = {model.pk: model.name for model in models}
    held = {}
    for model_batch in _batches(names):
        for prompt_batch in _batches(sorted(prompt_ids)):
            held.update(
                ((names[model_id], prompt_id, index), sha256)
                for model_id, prompt_id, index, sha256 in GeneratedImage.objects.filter(
                    model_version_id__in=model_batch, prompt_id__in=prompt_batch
                ).values_list("model_version_id", "prompt_id", "index", "sha256")
            )
    return held


def _stored_with_sha(hashes: Iterable[str]) -> dict[str, GeneratedImage]:
    return {
        image.sha256: image
        for batch in _batches(hashes)
        for image in GeneratedImage.objects.select_related("model_version", "prompt").filter(sha256__in=batch)
    }


def _first_sight(key: str, row: ManifestRow, first_line_of_image: dict[str, int]) -> None:
    if key in first_line_of_image:
        raise ImportRejected(
            errors.DUPLICATE_IMAGE_IN_FILE.format(path=row.image, first_line=first_line_of_image[key]),
            line=row.line,
        )
    first_line_of_image[key] = row.line


def _read_image(source, row: ManifestRow) -> bytes:
    try:
        return source.read(row.image)
    except ImageSourceError as exc:
        raise ImportRejected(str(exc), line=row.line) from None


def _decode_image(data: bytes, row: ManifestRow) -> CanonicalImage:
    try:
        return canonical_png(data, max_pixels=limits.MAX_IMAGE_PIXELS.value)
    except ImageTooLarge as exc:
        raise ImportRejected(
            errors.IMAGE_TOO_MANY_PIXELS.format(
                path=row.image, width=exc.width, height=exc.height, limit=exc.limit
            ),
            line=row.line,
        ) from None
    except ImageUnreadable as exc:
        raise ImportRejected(
            errors.IMAGE_UNREADABLE.format(path=row.image, error=exc), line=row.line
        ) from None
