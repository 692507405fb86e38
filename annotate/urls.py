from django.urls import path
from django.views.generic import RedirectView

from annotate import converters, invitation_views, study_views, views  # noqa: F401  (converters: <id:…>, <position:…>, <token:…>)

app_name = "annotate"
urlpatterns = [
    path("", views.home, name="home"),
    path("studies/<id:study_id>/", views.label, name="label"),
    path("images/<token:token>/<position:position>.png", views.image, name="image"),
    path("research/studies/", study_views.study_list, name="study_list"),
    path("research/studies/new/", study_views.study_create_view, name="study_create"),
    # A study's page moved to the results app, which shows its results; old links follow.
    path("research/studies/<id:pk>/", RedirectView.as_view(pattern_name="results:study", permanent=True)),
    path("research/studies/<id:pk>/status/", study_views.study_status, name="study_status"),
    path("research/invitations/", invitation_views.invitations, name="invitations"),
    path(
        "research/invitations/<id:pk>/revoke/",
        invitation_views.invitation_revoke_view,
        name="invitation_revoke",
    ),
]
