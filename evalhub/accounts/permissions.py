"""API permissions by role (evalhub.accounts.roles), for every app's API."""

from rest_framework.permissions import BasePermission

from evalhub.accounts.roles import user_is_annotator, user_is_researcher


class IsAnnotator(BasePermission):
    message = "Only annotators can do this."

    def has_permission(self, request, view) -> bool:
        return user_is_annotator(request.user)


class IsResearcher(BasePermission):
    message = "Only researchers can do this."

    def has_permission(self, request, view) -> bool:
        return user_is_researcher(request.user)
