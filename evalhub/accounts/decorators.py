"""View decorators for the role-restricted pages."""

from django.contrib.auth.decorators import login_required, permission_required


def permission_page(perm: str):
    """Log in first, then 403 (not a login loop) without ``perm``."""

    def wrap(view):
        return login_required(permission_required(perm, raise_exception=True)(view))

    return wrap
