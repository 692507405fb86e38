from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """Prompt sets, model versions and the images they generated: what studies are built from."""

    name = "evalhub.catalog"
    label = "catalog"
    verbose_name = "Catalog"
