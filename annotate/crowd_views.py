"""The public crowd link, ``/crowd/<study>/?PROLIFIC_PID=…&STUDY_ID=…&SESSION_ID=…``
(or ``participant``, ``study``, ``session``): a participant from a crowd platform is
logged in as their passwordless annotator and sent to the labeling page
(annotate.crowd decides)."""

from django.contrib.auth import login
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from annotate import converters  # noqa: F401  (converters: <id:…> in evalhub.urls)
from annotate.crowd import crowd_enter, crowd_parameters
from annotate.errors import AnnotationError
from annotate.models import Study

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def crowd_entry(request, study_id: int):
    """Enter the study as the participant the link names; a refusal is a page that says why
    (404: no crowd participants here, 400: a malformed id, 409: already took part, 403:
    excluded), with nothing to do on it."""
    study = get_object_or_404(Study, pk=study_id)
    try:
        enrollment = crowd_enter(study=study, **crowd_parameters(request.GET))
    except AnnotationError as exc:
        return render(request, "annotate/crowd_refused.html", {"reason": exc.message}, status=exc.status)
    if request.user != enrollment.annotator:
        login(request, enrollment.annotator, backend=MODEL_BACKEND)
    return redirect(reverse("annotate:label", args=[study.pk]))
