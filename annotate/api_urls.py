from django.urls import path

from annotate import api, converters  # noqa: F401  (converters: <id:…>, <token:…>)

urlpatterns = [
    path("annotate/studies/", api.AnnotatorStudyListApi.as_view(), name="api-annotator-studies"),
    path("annotate/studies/<id:study_id>/next/", api.NextAssignmentsApi.as_view(), name="api-next"),
    path("annotate/assignments/<token:token>/submit/", api.SubmitApi.as_view(), name="api-submit"),
    path("annotate/assignments/<token:token>/heartbeat/", api.HeartbeatApi.as_view(), name="api-heartbeat"),
    path("annotate/assignments/<token:token>/skip/", api.SkipApi.as_view(), name="api-skip"),
    path("annotate/assignments/<token:token>/report/", api.ReportApi.as_view(), name="api-report"),
    path("studies/", api.StudyListCreateApi.as_view(), name="api-studies"),
    path("studies/<id:study_id>/", api.StudyDetailApi.as_view(), name="api-study"),
    path("studies/<id:study_id>/gold/", api.StudyGoldApi.as_view(), name="api-study-gold"),
]
