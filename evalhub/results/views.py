"""Researcher pages of a study's results: the study page, and downloads of its win-rate
table in every export format and of its judgments (``?provisional=1``: count items with
fewer than N judgments, labelled provisional)."""

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from annotate import selectors
from annotate.exposure import study_exposure_blocks
from annotate.models import Study
from evalhub.accounts.decorators import permission_page
from evalhub.results.agreement import annotator_stats, study_agreement
from evalhub.results.errors import ResultsError
from evalhub.results.judgments_csv import judgments_csv
from evalhub.results.majority import majority_rule
from evalhub.results.winrate_formats import FORMATS, PROVISIONAL_NOTE, render_table
from evalhub.results.winrates import ab_comparison

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "tex": "application/x-tex; charset=utf-8",
    "json": "application/json",
    "png": "image/png",
}


def provisional_requested(request) -> bool:
    """Whether the query asks for the provisional table (``?provisional=1``)."""
    return request.GET.get("provisional", "") in ("1", "true", "yes")


@permission_page("annotate.view_judgment")
def winrates(request, pk: int, fmt: str):
    study = get_object_or_404(Study, pk=pk)
    if fmt not in CONTENT_TYPES:
        raise Http404("Unknown format")
    try:
        content = render_table([ab_comparison(study, include_incomplete=provisional_requested(request))], fmt)
    except ResultsError as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
    if fmt != "png":
        response["Content-Disposition"] = f'attachment; filename="winrates-study-{study.pk}.{fmt}"'
    return response


@permission_page("annotate.view_judgment")
def judgments(request, pk: int):
    study = get_object_or_404(Study, pk=pk)
    response = HttpResponse(judgments_csv(study), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="judgments-study-{study.pk}.csv"'
    return response


@permission_page("annotate.view_study")
def study_page(request, pk: int):
    """A study: its set-up, progress, exposure blocks, annotators and agreement, and for
    A/B its win-rate table (``?provisional=1``: the running table)."""
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
        "results/study.html",
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
