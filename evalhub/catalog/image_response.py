"""Serving a stored image file: the same response for researchers and annotators."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from evalhub.catalog.models import GeneratedImage


def image_file_response(image: GeneratedImage) -> FileResponse:
    """The image's PNG with a generic file name and no caching across users."""
    try:
        handle = default_storage.open(image.file.name, "rb")
    except FileNotFoundError:
        raise Http404("Image file missing") from None
    response = FileResponse(handle, content_type="image/png", filename="image.png")
    response["Cache-Control"] = "private, max-age=3600"
    return response
