"""URL path converters for values that go to the database: a number beyond its column's
range, or a token that no lease can have, matches no URL (404) instead of reaching SQL,
where SQLite's driver raises OverflowError past 64 bits and PostgreSQL refuses a number
that does not fit its column or a text with a NUL character."""

from django.urls import register_converter

MAX_ID = 2**63 - 1  # a BigAutoField: PostgreSQL's bigint, SQLite's INTEGER
MAX_POSITION = 32767  # a PositiveSmallIntegerField (TaskImage.position): smallint


class _Bounded:
    """Whole numbers from ``low`` to ``high``, in decimal digits without a sign."""

    regex = "[0-9]{1,19}"
    low = 0
    high = MAX_ID

    def to_python(self, value: str) -> int:
        number = int(value)
        if not self.low <= number <= self.high:
            raise ValueError(f"{number} is out of range")  # Django: the pattern does not match
        return number

    def to_url(self, value: int) -> str:
        return str(value)


class IdConverter(_Bounded):
    """A row's id: 1 to 2**63 - 1."""

    low = 1


class PositionConverter(_Bounded):
    """An image's display position in a task: 0 to 32767."""

    high = MAX_POSITION


class TokenConverter:
    """An assignment's token: letters and digits, as many as the column holds (a lease's is
    32 hex digits, annotate.models.new_token)."""

    regex = "[0-9A-Za-z]{1,32}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(IdConverter, "id")
register_converter(PositionConverter, "position")
register_converter(TokenConverter, "token")
