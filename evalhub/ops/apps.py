from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: health checks of the web process and of Celery workers."""

    name = "evalhub.ops"
    label = "ops"
