"""Reading what the API answered, for tests."""


def said(body) -> list[str]:
    """Every text in a JSON answer: the message, wherever the error contract puts it."""
    if isinstance(body, str):
        return [body]
    if isinstance(body, dict):
        return [text for value in body.values() for text in said(value)]
    if isinstance(body, list):
        return [text for value in body for text in said(value)]
    return []
