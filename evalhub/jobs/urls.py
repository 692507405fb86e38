from django.urls import path

from evalhub.jobs import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="job_list"),
    path("<int:pk>/", views.job_detail, name="job_detail"),
    path("<int:pk>/samples/<int:step>/<int:index>.png", views.job_sample, name="job_sample"),
    path("<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("<int:pk>/retry/", views.job_retry, name="job_retry"),
    path("<int:pk>/export-file/", views.job_export_file, name="job_export_file"),
    path("new/training/", views.training_new, name="training_new"),
    path("new/generation/<int:version_id>/", views.generation_new, name="generation_new"),
    path("compare/<int:version_id>/", views.compare_new, name="compare_new"),
    path("new/export/<int:study_id>/", views.judgments_export_new, name="judgments_export_new"),
]
