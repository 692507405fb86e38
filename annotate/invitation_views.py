"""Invitation pages: the researchers' list of links (make, revoke), and the public page
of a link, ``/join/<token>/``, where a newcomer signs up or a logged-in user continues
(annotate.enrollment decides)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.core.cache import cache
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from annotate import converters, errors, selectors  # noqa: F401  (converters: <token:…> in evalhub.urls)
from annotate.enrollment import (
    annotator_signup,
    invitation_accept,
    invitation_create,
    invitation_expiry,
    invitation_refusal,
    invitation_revoke,
    invitation_state,
)
from annotate.errors import AnnotationError
from annotate.invitation_forms import InvitationForm, SignupForm
from annotate.models import Invitation, Study
from evalhub.accounts.decorators import permission_page
from evalhub.accounts.lockout import client_address

SIGNUP_WINDOW_SECONDS = 3600
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@permission_page("annotate.change_study")
def invitations(request):
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invitation = invitation_create(
                studies=list(data["studies"]),
                created_by=request.user,
                expires_at=invitation_expiry(data["expires_in_days"]),
                max_uses=data["max_uses"],
                email_domain=data["email_domain"],
                note=data["note"],
            )
        except AnnotationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Invitation link made: {_link(request, invitation)}")
            return redirect("annotate:invitations")
    now = timezone.now()
    rows = [
        {
            "invitation": invitation,
            "link": _link(request, invitation),
            "state": invitation_state(invitation, now),
        }
        for invitation in selectors.invitations_list()
    ]
    return render(request, "annotate/invitations.html", {"form": form, "rows": rows})


@require_POST
@permission_page("annotate.change_study")
def invitation_revoke_view(request, pk: int):
    invitation = get_object_or_404(Invitation, pk=pk)
    try:
        invitation_revoke(invitation=invitation)
    except AnnotationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The invitation is withdrawn: its link takes nobody new.")
    return redirect("annotate:invitations")


def _link(request, invitation: Invitation) -> str:
    return request.build_absolute_uri(reverse("join", args=[invitation.token]))


def join(request, token: str):
    """An invitation's page: its studies' titles (never their names), then "Continue as …"
    for a logged-in user, or a sign-up form with a way to log in and come back. A link that
    takes nobody new answers 410 with a page that says why, and no form."""
    invitation = get_object_or_404(Invitation, token=token)
    titles = [study.title for study in invitation.studies.order_by("pk")]
    refusal = invitation_refusal(invitation)
    if refusal is not None:
        return render(request, "annotate/join_closed.html", {"reason": refusal, "titles": titles}, status=410)
    context = {"invitation": invitation, "titles": titles}
    if request.user.is_authenticated:
        if request.method == "POST":
            try:
                invitation_accept(invitation=invitation, user=request.user)
            except AnnotationError as exc:
                messages.error(request, exc.message)
            else:
                return redirect(_landing(invitation))
        return render(request, "annotate/join.html", context)
    form = SignupForm(request.POST or None, invitation=invitation)
    status = 200
    if request.method == "POST":
        if not _signup_allowed(request):
            form.add_error(None, errors.SIGNUPS_THROTTLED)
            status = 429
        elif form.is_valid():
            try:
                user = annotator_signup(
                    invitation=invitation,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                    email=form.cleaned_data.get("email", ""),
                )
            except AnnotationError as exc:
                form.add_error(None, exc.message)
            else:
                login(request, user, backend=MODEL_BACKEND)
                return redirect(_landing(invitation))
    context |= {"form": form, "login_url": f"{reverse('login')}?next={reverse('join', args=[token])}"}
    return render(request, "annotate/join.html", context, status=status)


def _landing(invitation: Invitation) -> str:
    """Where a newcomer goes: straight to the study when the link has one that is open,
    else the annotator's home."""
    studies = list(invitation.studies.all()[:2])
    if len(studies) == 1 and studies[0].status == Study.Status.OPEN:
        return reverse("annotate:label", args=[studies[0].pk])
    return reverse("annotate:home")


def _signup_allowed(request) -> bool:
    """Count a sign-up try from the client's address; False past SIGNUPS_PER_HOUR in the
    hour from the first try (a fixed window, in the cache the API's rates use)."""
    limit = settings.SIGNUPS_PER_HOUR
    if not limit:
        return True
    key = f"evalhub:signups:{client_address(request)}"
    cache.add(key, 0, timeout=SIGNUP_WINDOW_SECONDS)
    try:
        tries = cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout=SIGNUP_WINDOW_SECONDS)
        tries = 1
    return tries <= limit
