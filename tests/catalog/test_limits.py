"""The import bounds: integer ranges are the columns', the rest are settings."""

import pytest
from django.db.backends.base.operations import BaseDatabaseOperations

from evalhub.catalog import limits
from evalhub.catalog.models import AlignmentQuestion, GeneratedImage, Prompt

RANGES = BaseDatabaseOperations.integer_field_ranges


@pytest.mark.parametrize(
    "bounds, model, field",
    [
        (limits.SEED_RANGE, GeneratedImage, "seed"),
        (limits.POSITION_RANGE, GeneratedImage, "index"),
        (limits.POSITION_RANGE, Prompt, "position"),
        (limits.POSITION_RANGE, AlignmentQuestion, "position"),
    ],
)
def test_integer_bounds_are_the_database_columns(bounds, model, field):
    """Each bound is Django's range for the column's type."""
    assert bounds == RANGES[model._meta.get_field(field).get_internal_type()]


@pytest.mark.parametrize("limit", limits.ALL, ids=lambda limit: limit.setting)
def test_a_setting_overrides_each_default(limit, settings):
    """Unset, a limit is its default; set, the setting's value, read when it is asked."""
    if hasattr(settings, limit.setting):
        delattr(settings, limit.setting)
    assert limit.value == limit.default
    setattr(settings, limit.setting, 7)
    assert limit.value == 7


def test_the_pixel_limit_is_well_below_pillows():
    """Our refusal comes before Pillow's own decompression-bomb error (179 Mpx)."""
    from PIL import Image

    assert limits.MAX_IMAGE_PIXELS.default < Image.MAX_IMAGE_PIXELS
