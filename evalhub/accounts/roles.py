"""The two roles, as Django groups with fixed permissions.

Researchers manage prompt sets, model versions and images (and, later, studies and
training). Annotators label; they get no permission that reveals a model's identity.
"""

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

RESEARCHERS = "researchers"
ANNOTATORS = "annotators"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    RESEARCHERS: [
        "catalog.import_data",
        "catalog.view_promptset",
        "catalog.add_promptset",
        "catalog.change_promptset",
        "catalog.view_prompt",
        "catalog.view_alignmentquestion",
        "catalog.view_modelversion",
        "catalog.add_modelversion",
        "catalog.change_modelversion",
        "catalog.view_generatedimage",
        "annotate.view_study",
        "annotate.add_study",
        "annotate.change_study",
        "annotate.view_judgment",
        "jobs.view_job",
        "jobs.add_job",
        "jobs.change_job",
    ],
    ANNOTATORS: [],
}


@transaction.atomic
def roles_sync() -> None:
    """Create both groups and set exactly their listed permissions."""
    for group_name, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        permissions = [_permission(code) for code in codes]
        group.permissions.set(permissions)


def user_grant_role(*, user: User, role: str) -> None:
    """Put ``user`` in the role's group (creating the groups if needed)."""
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLE_PERMISSIONS)}")
    group = Group.objects.filter(name=role).first()
    if group is None:
        roles_sync()
        group = Group.objects.get(name=role)
    user.groups.add(group)
    user.__dict__.pop("_evalhub_roles", None)


def user_roles(user) -> frozenset[str]:
    """The user's role groups, read once per user object (a request's user lives for one
    request, so a role change applies from the next request on)."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_evalhub_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ROLE_PERMISSIONS).values_list("name", flat=True))
        user._evalhub_roles = cached
    return cached


def user_roles_set(user, roles) -> None:
    """Record the user's roles where they were read with the user (token authentication)."""
    user._evalhub_roles = frozenset(roles)


def user_is_researcher(user) -> bool:
    return user.is_authenticated and (user.is_superuser or RESEARCHERS in user_roles(user))


def user_is_annotator(user) -> bool:
    return ANNOTATORS in user_roles(user)


def _permission(code: str) -> Permission:
    app_label, codename = code.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)
