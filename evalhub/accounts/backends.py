"""The login lockout (django-axes) in front of Django's password check."""

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a locked-out username and address before any password is checked, for
    every log-in over HTTP (``/accounts/login/``, ``/admin/login/``). A call without a
    request (the shell, a management command, a test) cannot come from a guessing client
    and goes on to the password check, where axes would raise instead."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
