"""Token authentication that reads the user's roles in the same statement.

Every annotation API call checks a role (``evalhub.accounts.roles``); with DRF's own
token authentication that is two queries per request (token and user, then groups)
before any work is done. Here it is one statement, prepared once per connection.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from evalhub import sql
from evalhub.accounts.roles import ROLE_PERMISSIONS, user_roles_set


@cache
def _token_sql() -> str:
    user = get_user_model()
    roles = ",\n".join(
        f"""  EXISTS (SELECT 1 FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id
          WHERE ug.user_id = u.id AND g.name = '{role}')"""
        for role in ROLE_PERMISSIONS
    )
    return f"""
SELECT t.created, {sql.columns(user, "u")},
{roles}
FROM authtoken_token t JOIN {user._meta.db_table} u ON u.id = t.user_id
WHERE t.key = %(key)s
"""


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, with the roles read alongside."""

    def authenticate_credentials(self, key):
        row = sql.fetch_one(_token_sql(), {"key": key})
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        model = get_user_model()
        fields = len(model._meta.concrete_fields)
        user = sql.model_from_row(model, row[1 : 1 + fields])
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        user_roles_set(
            user, {role for role, held in zip(ROLE_PERMISSIONS, row[1 + fields :], strict=True) if held}
        )
        return user, Token(key=key, user=user, created=sql.aware(row[0]))
