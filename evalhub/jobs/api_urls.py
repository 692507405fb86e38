from django.urls import path

from evalhub.jobs import api

urlpatterns = [
    path("jobs/", api.JobListApi.as_view(), name="api-jobs"),
    path("jobs/training/", api.TrainingLaunchApi.as_view(), name="api-job-training"),
    path("jobs/generation/", api.GenerationLaunchApi.as_view(), name="api-job-generation"),
    path("jobs/<int:job_id>/", api.JobDetailApi.as_view(), name="api-job"),
    path("jobs/<int:job_id>/cancel/", api.JobCancelApi.as_view(), name="api-job-cancel"),
    path("jobs/<int:job_id>/retry/", api.JobRetryApi.as_view(), name="api-job-retry"),
    path("model-versions/<int:version_id>/compare/", api.CompareWithParentApi.as_view(), name="api-compare"),
]
