from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    """Users, the annotator and researcher roles, login and logout."""

    name = "evalhub.accounts"
    label = "accounts"

    def ready(self) -> None:
        # Permissions exist only once post_migrate has run for their app, so the
        # groups are synced after the last app (ours is listed after catalog).
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="evalhub.accounts.roles_sync")


def _sync_roles(sender, **kwargs) -> None:
    from evalhub.accounts.roles import roles_sync

    roles_sync()
