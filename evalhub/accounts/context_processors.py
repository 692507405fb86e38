"""Template context: which role's navigation to show."""

from evalhub.accounts.roles import user_is_annotator, user_is_researcher


def roles(request) -> dict:
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {"is_researcher": user_is_researcher(user), "is_annotator": user_is_annotator(user)}
