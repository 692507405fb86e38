"""Equal sizes in A/B (SPEC "Blinding"): when two models' images differ in size, the size
tells the sides apart (the payload names it, and so do the pixels).

Creating an A/B study whose pairs differ in size is refused, naming the sizes, unless the
researcher chooses a display size: then every image of the study is served resampled to
it by the same operation on both sides (cropped to the display size's aspect ratio around
the centre, then resampled with a Lanczos filter), stored once per image and size under an
opaque name, and the size is recorded on the study (``config["display_size"]``).
"""

import io
from collections import Counter

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps

from annotate import errors
from annotate.errors import InvalidInput
from annotate.models import ResampledImage
from annotate.study_settings import DISPLAY_SIZE
from evalhub.catalog.image_files import canonical_png, storage_name
from evalhub.catalog.models import GeneratedImage, new_public_id


def display_size_parse(value: str | None) -> tuple[int, int] | None:
    """``"WIDTHxHEIGHT"`` as a pair of ints; None for empty. The bounds and the message are
    the ``display_size`` setting's (annotate.study_settings)."""
    return DISPLAY_SIZE.check(value) if value is not None else None


def ab_sizes_check(pairs: list[tuple[GeneratedImage, GeneratedImage]]) -> None:
    """Refuse pairs (A, B) whose images differ in size, naming the sizes and how often."""
    differing = Counter((_size(a), _size(b)) for a, b in pairs if (a.width, a.height) != (b.width, b.height))
    if differing:
        examples = "; ".join(
            f"A {size_a}, B {size_b} in {count} prompt(s)"
            for (size_a, size_b), count in differing.most_common(3)
        )
        raise InvalidInput(errors.AB_SIZES_DIFFER.format(examples=examples))


def _size(image: GeneratedImage) -> str:
    return f"{image.width}×{image.height}"


def resampled_images(images: list[GeneratedImage], size: tuple[int, int], written: list[str]) -> dict:
    """Each image at ``size``: existing copies are reused, the others made and stored
    (their file names appended to ``written``, for the caller to remove on failure)."""
    width, height = size
    found = {
        copy.source_id: copy
        for copy in ResampledImage.objects.filter(source__in=images, width=width, height=height)
    }
    for image in images:
        if image.pk in found:
            continue
        with default_storage.open(image.file.name, "rb") as handle, Image.open(handle) as decoded:
            fitted = ImageOps.fit(decoded, size, method=Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            fitted.save(buffer, format="PNG")
        canonical = canonical_png(buffer.getvalue())
        name = default_storage.save(storage_name(new_public_id()), ContentFile(canonical.png))
        written.append(name)
        found[image.pk] = ResampledImage.objects.create(source=image, width=width, height=height, file=name)
    return found
