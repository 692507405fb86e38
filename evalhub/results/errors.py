"""The error every results module raises when a table or an export cannot be made."""


class ResultsError(Exception):
    """A table or an export cannot be computed; the message says why, for the researcher."""
