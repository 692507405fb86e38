"""Researcher pages of results: a study's page, downloads of its win-rate table in every
export format (``?download=1``: the chart as an attachment too), of its judgments (CSV
streamed as it is read, or Parquet) and of a
best/worst study's preference pairs (a ZIP of the export folder), and the annotators'
figures across studies, and a study's workforce (its annotators' flags, exclusions and
reinstatements). ``?provisional=1`` counts items with fewer than N judgments, labelled
provisional."""

import tempfile

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from annotate.enrollment import annotator_remove
from annotate.errors import AnnotationError
from annotate.models import Study
from annotate.workforce import annotator_exclude, annotator_reinstate
from evalhub.accounts.decorators import permission_page
from evalhub.results.annotator_overview import annotator_studies, annotators_overview
from evalhub.results.errors import ResultsError
from evalhub.results.judgments_csv import judgments_csv_chunks
from evalhub.results.judgments_parquet import PARQUET_CONTENT_TYPE, judgments_parquet_write
from evalhub.results.majority import majority_rule
from evalhub.results.participants_csv import participants_csv
from evalhub.results.preference_export import preference_pairs_zip
from evalhub.results.study_page import study_page_context
from evalhub.results.winrate_formats import FORMATS, PROVISIONAL_NOTE, render_table
from evalhub.results.winrates import ab_comparison
from evalhub.results.workforce_page import (
    REMOVED_MESSAGE,
    ReasonForm,
    annotator_in_study,
    event_message,
    workforce_page_context,
)

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "tex": "application/x-tex; charset=utf-8",
    "json": "application/json",
    "png": "image/png",
}
TRUE = ("1", "true", "yes")


def provisional_requested(request) -> bool:
    """Whether the query asks for the provisional table (``?provisional=1``)."""
    return request.GET.get("provisional", "") in TRUE


def download_requested(request) -> bool:
    """Whether the query asks for an attachment rather than inline content (``?download=1``)."""
    return request.GET.get("download", "") in TRUE


def study_file_name(study: Study, what: str) -> str:
    """A download's name from the study's name (its id where the name leaves no letters)."""
    return f"{slugify(study.name) or f'study-{study.pk}'}-{what}"


def _conflict(exc: ResultsError) -> HttpResponse:
    return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")


@permission_page("annotate.view_judgment")
def winrates(request, pk: int, fmt: str):
    study = get_object_or_404(Study, pk=pk)
    if fmt not in CONTENT_TYPES:
        raise Http404("Unknown format")
    try:
        content = render_table([ab_comparison(study, include_incomplete=provisional_requested(request))], fmt)
    except ResultsError as exc:
        return _conflict(exc)
    response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
    # The chart is also shown in the page, inline; downloads ask for it as a file.
    if fmt != "png" or download_requested(request):
        response["Content-Disposition"] = f'attachment; filename="winrates-study-{study.pk}.{fmt}"'
    return response


@permission_page("annotate.view_judgment")
def judgments(request, pk: int):
    """Every judgment of the study as CSV, streamed: the header at once, then the rows as
    the database cursor yields them (evalhub.results.judgments_csv)."""
    study = get_object_or_404(Study, pk=pk)
    response = StreamingHttpResponse(judgments_csv_chunks(study), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="judgments-study-{study.pk}.csv"'
    return response


@permission_page("annotate.view_judgment")
def judgments_parquet(request, pk: int):
    """Every judgment of the study as Parquet, typed columns. Written whole to a temporary
    file first (a Parquet file ends with its footer, so it cannot go out as it is read),
    then streamed from it; the file is deleted when the response closes it."""
    study = get_object_or_404(Study, pk=pk)
    out = tempfile.TemporaryFile()
    try:
        judgments_parquet_write(study, out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return FileResponse(
        out,
        as_attachment=True,
        filename=f"judgments-study-{study.pk}.parquet",
        content_type=PARQUET_CONTENT_TYPE,
    )


@permission_page("annotate.view_judgment")
def participants(request, pk: int):
    """The study's crowd participants as CSV, for the platform's payment and approval."""
    study = get_object_or_404(Study, pk=pk)
    response = HttpResponse(participants_csv(study), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="participants-study-{study.pk}.csv"'
    return response


@permission_page("annotate.view_judgment")
def preference_pairs(request, pk: int):
    """The preference export of a best/worst study as ``<study>-preferences.zip``, streamed
    from a temporary file; 409 with the reason when it has no pair (or is another kind)."""
    study = get_object_or_404(Study, pk=pk)
    name = study_file_name(study, "preferences")
    archive = tempfile.TemporaryFile()  # deleted when the response closes it
    try:
        preference_pairs_zip(
            study=study, out=archive, root=name, include_incomplete=provisional_requested(request)
        )
    except ResultsError as exc:
        archive.close()
        return _conflict(exc)
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename=f"{name}.zip", content_type="application/zip")


@permission_page("annotate.view_study")
def study_page(request, pk: int):
    """A study: its set-up, the status changes it allows, progress, exposure blocks, its
    results by kind, annotators and agreement (``?provisional=1``: the running picture)."""
    study = get_object_or_404(Study.objects.select_related("prompt_set"), pk=pk)
    context = study_page_context(
        study, provisional=provisional_requested(request), base_url=request.build_absolute_uri("/")[:-1]
    )
    return render(
        request, "results/study.html", context | {"formats": FORMATS, "provisional_note": PROVISIONAL_NOTE}
    )


@permission_page("annotate.view_judgment")
def annotators(request):
    """Every annotator's progress and quality across studies."""
    rule = majority_rule()
    return render(request, "results/annotators.html", {"annotators": annotators_overview(rule), "rule": rule})


@permission_page("annotate.view_judgment")
def annotator(request, pk: int):
    """One annotator's figures, study by study."""
    person = get_object_or_404(User, pk=pk)
    rule = majority_rule()
    return render(
        request,
        "results/annotator.html",
        {"person": person, "studies": annotator_studies(person, rule), "rule": rule},
    )


@permission_page("annotate.view_judgment")
def workforce(request, pk: int):
    """A study's annotators with their flags and status, the Exclude and Reinstate forms,
    the log of both, and the study's quality rule."""
    study = get_object_or_404(Study, pk=pk)
    return render(request, "results/workforce.html", workforce_page_context(study))


@require_POST
@permission_page("annotate.change_study")
def workforce_exclude(request, pk: int, user_id: int):
    return _workforce_change(request, pk, user_id, lambda **how: event_message(annotator_exclude(**how)))


@require_POST
@permission_page("annotate.change_study")
def workforce_reinstate(request, pk: int, user_id: int):
    return _workforce_change(request, pk, user_id, lambda **how: event_message(annotator_reinstate(**how)))


@require_POST
@permission_page("annotate.change_study")
def workforce_remove(request, pk: int, user_id: int):
    """Remove an enrolled annotator (annotate.enrollment): no more tasks for them here,
    their leases released at once; their judgments stay and count."""
    return _workforce_change(request, pk, user_id, _remove)


def _remove(*, study, annotator, reason, by) -> str:
    released = annotator_remove(study=study, annotator=annotator, reason=reason)
    return REMOVED_MESSAGE.format(annotator=annotator.username, leases=released)


def _workforce_change(request, pk: int, user_id: int, act):
    """Exclude, reinstate or remove (``act``, which says what it did) with the form's
    reason, then back to the workforce page with what was done or why not."""
    study = get_object_or_404(Study, pk=pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"reason: {form.errors['reason'][0]}")
        return redirect("results:workforce", pk=pk)
    try:
        annotator = annotator_in_study(study, pk=user_id)
        done = act(study=study, annotator=annotator, reason=form.cleaned_data["reason"], by=request.user)
    except AnnotationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("results:workforce", pk=pk)
