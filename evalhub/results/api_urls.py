from django.urls import path, register_converter

from annotate import converters  # noqa: F401  (<id:…>)
from evalhub.results.api import (
    StudyWinRatesApi,
    StudyWorkforceApi,
    StudyWorkforceExcludeApi,
    StudyWorkforceReinstateApi,
)


class UsernameConverter:
    """A username as Django's validator allows it (letters, digits, @.+-_), as long as the
    column holds: nothing else reaches the database (a NUL would fail on PostgreSQL)."""

    regex = r"[\w.@+-]{1,150}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UsernameConverter, "username")

urlpatterns = [
    path("studies/<int:study_id>/winrates/", StudyWinRatesApi.as_view(), name="api-study-winrates"),
    path("studies/<id:study_id>/workforce/", StudyWorkforceApi.as_view(), name="api-study-workforce"),
    path(
        "studies/<id:study_id>/workforce/<username:username>/exclude/",
        StudyWorkforceExcludeApi.as_view(),
        name="api-study-workforce-exclude",
    ),
    path(
        "studies/<id:study_id>/workforce/<username:username>/reinstate/",
        StudyWorkforceReinstateApi.as_view(),
        name="api-study-workforce-reinstate",
    ),
]
