"""The annotator's pages: open studies, the labeling page, and task images."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from annotate.models import Lease, Study, TaskImage
from annotate.selectors import studies_open_for
from evalhub.accounts.roles import user_is_annotator
from evalhub.catalog.image_response import image_file_response


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
    return render(request, "annotate/labeling.html", {"study": study})


@require_GET
@_annotator
def image(request, token: str, position: int):
    """A task's image by assignment token and display position, for its annotator only."""
    lease = Lease.objects.filter(token=token, annotator=request.user).only("task_id").first()
    if lease is None:
        raise Http404("No such assignment")
    task_image = get_object_or_404(
        TaskImage.objects.select_related("image"), task_id=lease.task_id, position=position
    )
    return image_file_response(task_image.image)
