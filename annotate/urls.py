from django.urls import path
from django.views.generic import RedirectView

from annotate import study_views, views

app_name = "annotate"
urlpatterns = [
    path("", views.home, name="home"),
    path("studies/<int:study_id>/", views.label, name="label"),
    path("images/<str:token>/<int:position>.png", views.image, name="image"),
    path("research/studies/", study_views.study_list, name="study_list"),
    path("research/studies/new/", study_views.study_create_view, name="study_create"),
    # A study's page moved to the results app, which shows its results; old links follow.
    path("research/studies/<int:pk>/", RedirectView.as_view(pattern_name="results:study", permanent=True)),
    path("research/studies/<int:pk>/status/", study_views.study_status, name="study_status"),
]
