from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Generation and training jobs: launched from the app, run by Celery workers."""

    name = "evalhub.jobs"
    label = "jobs"
