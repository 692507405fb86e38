from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo behind ``make demo``: its catalog, images, weights, studies and accounts, on
    top of every other app (nothing imports it)."""

    name = "evalhub.demo"
    label = "demo"
