from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Jobs run by Celery workers: generation and training (GPU), image imports and
    judgment exports (CPU). Launched from the app."""

    name = "evalhub.jobs"
    label = "jobs"

    def ready(self):
        # The import page (a layer below) hands large archives to a job through this.
        from evalhub.catalog.background_import import background_import_register
        from evalhub.jobs.import_jobs import image_import_launch

        background_import_register(image_import_launch)
