"""Researcher pages for studies: list, create, progress, pause/resume/close."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotate import selectors
from annotate.errors import AnnotationError
from annotate.exposure import study_exposure_blocks
from annotate.forms import StudyForm
from annotate.models import Study
from annotate.services import study_create, study_update
from evalhub.accounts.decorators import permission_page
from evalhub.results.ab_outcomes import ResultsError
from evalhub.results.agreement import annotator_stats, study_agreement
from evalhub.results.majority import majority_rule
from evalhub.results.views import provisional_requested
from evalhub.results.winrate_formats import FORMATS, PROVISIONAL_NOTE
from evalhub.results.winrates import ab_comparison


@permission_page("annotate.view_study")
def study_list(request):
    return render(request, "annotate/study_list.html", {"studies": selectors.study_list()})


@permission_page("annotate.add_study")
def study_create_view(request):
    form = StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            study = study_create(
                name=data["name"],
                kind=data["kind"],
                prompt_set=data["prompt_set"],
                model_versions=form.model_versions(),
                created_by=request.user,
                criteria=data["criteria"],
                overlap=data["overlap"],
                lease_seconds=data["lease_seconds"],
                image_index=data["image_index"],
                guidelines=data["guidelines"],
                skip_incomplete=data["skip_incomplete"],
                title=data["title"],
                exposure=data["exposure"] if data["kind"] == Study.Kind.AB else None,
                display_size=data["display_size"],
            )
        except AnnotationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Study {study.name} created with {study.tasks.count()} tasks.")
            return redirect("annotate:study_detail", pk=study.pk)
    return render(request, "annotate/study_form.html", {"form": form})


@permission_page("annotate.view_study")
def study_detail(request, pk: int):
    study = get_object_or_404(Study.objects.select_related("prompt_set"), pk=pk)
    provisional = provisional_requested(request)
    comparison, results_message = None, ""
    if study.kind == Study.Kind.AB:
        try:
            comparison = ab_comparison(study, include_incomplete=provisional)
        except ResultsError as exc:
            results_message = str(exc)
    agreement = study_agreement(study)
    per_annotator = annotator_stats(study, majority_rule()).to_dict("index")
    annotators = [row | per_annotator.get(row["username"], {}) for row in selectors.study_annotators(study)]
    return render(
        request,
        "annotate/study_detail.html",
        {
            "study": study,
            "models": study.study_models.select_related("model_version"),
            "progress": selectors.study_progress(study),
            "blocks": study_exposure_blocks(study),
            "annotators": annotators,
            "agreement": agreement,
            "statuses": Study.Status.choices,
            "comparison": comparison,
            "results_message": results_message,
            "formats": FORMATS,
            "provisional": provisional,
            "provisional_note": PROVISIONAL_NOTE,
        },
    )


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
    return redirect("annotate:study_detail", pk=pk)
