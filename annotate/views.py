"""The annotator's pages: open studies, the labeling page, and task images."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from annotate import errors
from annotate.models import Lease, Study, TaskImage
from annotate.selectors import studies_allowed_to, studies_open_for
from annotate.served_png import png_for_task
from evalhub.accounts.roles import user_is_annotator


def _annotator(view):
    def wrapped(request, *args, **kwargs):
        if not user_is_annotator(request.user):
            raise PermissionDenied("Only annotators can open this page.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


@_annotator
def home(request):
    return render(request, "annotate/home.html", {"studies": studies_open_for(request.user)})


@_annotator
def label(request, study_id: int):
    study = get_object_or_404(Study, pk=study_id, status=Study.Status.OPEN)
    if not studies_allowed_to(request.user).filter(pk=study.pk).exists():
        raise PermissionDenied(errors.NOT_ENROLLED)
    return render(request, "annotate/labeling.html", {"study": study})


@require_GET
@_annotator
def image(request, token: str, position: int):
    """A task's image by assignment token and display position, for its annotator only:
    bytes of this task's own (annotate.served_png), at the study's display size if it has one."""
    lease = Lease.objects.filter(token=token, annotator=request.user).only("task_id").first()
    if lease is None:
        raise Http404("No such assignment")
    task_image = get_object_or_404(
        TaskImage.objects.select_related("image", "resampled"), task_id=lease.task_id, position=position
    )
    stored = task_image.resampled or task_image.image
    try:
        with default_storage.open(stored.file.name, "rb") as handle:
            png = handle.read()
    except FileNotFoundError:
        raise Http404("Image file missing") from None
    response = HttpResponse(png_for_task(png, token=token, position=position), content_type="image/png")
    response["Content-Disposition"] = 'inline; filename="image.png"'
    response["Cache-Control"] = "private, max-age=3600"
    return response
