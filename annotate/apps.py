from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    """Annotation work: what annotators see and submit."""

    name = "annotate"
