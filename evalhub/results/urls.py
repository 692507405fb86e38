from django.urls import path

from evalhub.results import views

app_name = "results"
urlpatterns = [
    path("studies/<int:pk>/", views.study_page, name="study"),
    path("studies/<int:pk>/winrates.<str:fmt>", views.winrates, name="winrates"),
    path("studies/<int:pk>/judgments.csv", views.judgments, name="judgments"),
    path("studies/<int:pk>/judgments.parquet", views.judgments_parquet, name="judgments_parquet"),
    path("studies/<int:pk>/participants.csv", views.participants, name="participants"),
    path("studies/<int:pk>/preferences.zip", views.preference_pairs, name="preference_pairs"),
    path("studies/<int:pk>/workforce/", views.workforce, name="workforce"),
    path(
        "studies/<int:pk>/workforce/<int:user_id>/exclude/", views.workforce_exclude, name="workforce_exclude"
    ),
    path(
        "studies/<int:pk>/workforce/<int:user_id>/reinstate/",
        views.workforce_reinstate,
        name="workforce_reinstate",
    ),
    path("studies/<int:pk>/workforce/<int:user_id>/remove/", views.workforce_remove, name="workforce_remove"),
    path("annotators/", views.annotators, name="annotators"),
    path("annotators/<int:pk>/", views.annotator, name="annotator"),
]
