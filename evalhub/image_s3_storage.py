"""The ``default`` storage on S3: a file read with one request.

django-storages' ``S3File`` asks for an object's metadata (twice) before it downloads it
through a transfer thread pool: three requests and a thread hand-off per image, which
``bench/annotation_load.py --mode images --storage s3`` measured at a third of the fetches
per second one GET gives. Here a read is one ``GetObject``: held in memory up to
:data:`IN_MEMORY_MAX` (every image: the import limits keep them far smaller), spooled to
a temporary file beyond (an uploaded archive of hundreds of MB that an import job reads).
Everything else (writes, listing, deletes) is django-storages' own.
"""

import tempfile

from botocore.exceptions import ClientError
from django.core.files.base import ContentFile, File
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

IN_MEMORY_MAX = 64 * 1024 * 1024
CHUNK = 1024 * 1024


class ImageS3Storage(S3Storage):
    def _open(self, name, mode="rb"):
        if mode != "rb":
            return super()._open(name, mode)
        key = self._normalize_name(clean_name(name))
        try:
            response = self.bucket.Object(key).get()
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from None
            raise
        body = response["Body"]
        if response["ContentLength"] <= IN_MEMORY_MAX:
            return ContentFile(body.read(), name=name)
        spooled = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_MAX)
        for chunk in body.iter_chunks(CHUNK):
            spooled.write(chunk)
        spooled.seek(0)
        return File(spooled, name=name)
