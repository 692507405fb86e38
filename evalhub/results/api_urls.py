from django.urls import path

from evalhub.results.api import StudyWinRatesApi

urlpatterns = [
    path("studies/<int:study_id>/winrates/", StudyWinRatesApi.as_view(), name="api-study-winrates"),
]
