"""Researcher pages for studies: list, create, pause/resume/close. A study's own page, with
its progress and results, is the results app's (``evalhub.results.views.study_page``):
these views send the researcher there by URL name, importing nothing from above."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotate import selectors
from annotate.errors import AnnotationError
from annotate.forms import StudyForm
from annotate.models import Study
from annotate.services import study_create, study_update
from evalhub.accounts.decorators import permission_page


@permission_page("annotate.view_study")
def study_list(request):
    return render(request, "annotate/study_list.html", {"studies": selectors.study_list()})


@permission_page("annotate.add_study")
def study_create_view(request):
    form = StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            study = study_create(
                prompt_set=form.cleaned_data["prompt_set"],
                model_versions=form.model_versions(),
                created_by=request.user,
                **form.settings(),
            )
        except AnnotationError as exc:
            form.service_error(exc)
        else:
            messages.success(request, f"Study {study.name} created with {study.tasks.count()} tasks.")
            return redirect("results:study", pk=study.pk)
    return render(request, "annotate/study_form.html", {"form": form})


@require_POST
@permission_page("annotate.change_study")
def study_status(request, pk: int):
    study = get_object_or_404(Study, pk=pk)
    try:
        study_update(study=study, status=request.POST.get("status", ""))
    except AnnotationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Study {study.name} is now {request.POST['status']}.")
    return redirect("results:study", pk=pk)
