from django.apps import AppConfig


class ResultsConfig(AppConfig):
    """From judgments to the numbers researchers publish: majorities, win rates, exports."""

    name = "evalhub.results"
    label = "results"
