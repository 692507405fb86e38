"""Researcher downloads of a study's win-rate table, in every export format
(``?provisional=1``: count items with fewer than N judgments, labelled provisional)."""

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404

from annotate.models import Study
from evalhub.accounts.decorators import permission_page
from evalhub.results.ab_outcomes import ResultsError
from evalhub.results.judgments_csv import judgments_csv
from evalhub.results.winrate_formats import render
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
        content = render([ab_comparison(study, include_incomplete=provisional_requested(request))], fmt)
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
