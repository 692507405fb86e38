"""Researcher pages for jobs: list, launch forms, the live job page, cancel/retry, compare,
and a judgments export's launch and file."""

import json

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.models import Study
from evalhub.accounts.decorators import permission_page
from evalhub.catalog.metric_names import metric_names
from evalhub.catalog.models import ModelVersion
from evalhub.jobs import selectors, services
from evalhub.jobs.errors import JobRejected
from evalhub.jobs.export_jobs import export_file_open, judgments_export_launch
from evalhub.jobs.forms import CompareForm, GenerationForm, TrainingForm
from evalhub.jobs.job_options import TRAINING_OPTIONS
from evalhub.jobs.models import Job
from evalhub.results.judgments_parquet import PARQUET_CONTENT_TYPE
from evalhub.storage import artifacts_storage, open_if_stored


@permission_page("jobs.view_job")
def job_list(request):
    return render(request, "jobs/job_list.html", {"jobs": selectors.jobs_recent()})


@permission_page("jobs.view_job")
def job_detail(request, pk: int):
    job = get_object_or_404(
        Job.objects.select_related("model_version", "produced_version", "source_study", "prompt_set"), pk=pk
    )
    # The charts' series and their legend names (the version page names final metrics alike);
    # the error chart only for a preference method.
    errors = selectors.error_chart_series(job)
    context = {
        "job": job,
        "chart_series": json.dumps(metric_names(selectors.CHART_SERIES)),
        "error_series": json.dumps(metric_names(errors)) if errors else "",
        "samples": selectors.sample_grid(selectors.job_samples(job)),
    }
    return render(request, "jobs/job_detail.html", context)


@permission_page("jobs.view_job")
def job_sample(request, pk: int, step: int, index: int):
    """One validation image of a training job (``step`` and ``index`` are the only parts of
    the path a request chooses); 404 where the run wrote none."""
    job = get_object_or_404(Job, pk=pk, kind=Job.Kind.TRAINING)
    name = selectors.sample_name(job, step, index)
    handle = open_if_stored(artifacts_storage(), name) if name is not None else None
    if handle is None:  # no such step or prompt, or not written (yet)
        raise Http404("no such validation sample")
    return FileResponse(handle, content_type="image/png")


@permission_page("jobs.add_job")
def training_new(request):
    initial = {k: request.GET[k] for k in ("study", "base_version") if k in request.GET}
    form = TrainingForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = services.training_launch(
                user=request.user,
                base_version=data["base_version"],
                study=data["study"],
                sft_data=data["sft_data"],
                version_name=data["version_name"],
                options={k: data[k] for k in TRAINING_OPTIONS if k in data},
            )
        except JobRejected as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Training job #{job.pk} queued.")
            return redirect("jobs:job_detail", pk=job.pk)
    return render(request, "jobs/job_form.html", {"form": form, "title": "Train a model version"})


@permission_page("jobs.add_job")
def generation_new(request, version_id: int):
    version = get_object_or_404(ModelVersion, pk=version_id)
    form = GenerationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.generation_launch(user=request.user, model_version=version, **form.cleaned_data)
        except JobRejected as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Generation job #{job.pk} queued.")
            return redirect("jobs:job_detail", pk=job.pk)
    return render(
        request, "jobs/job_form.html", {"form": form, "title": f"Generate images with {version.name}"}
    )


@permission_page("jobs.add_job")
def compare_new(request, version_id: int):
    """One action: A/B (flaws, appeal) and alignment studies against the parent, after generation."""
    version = get_object_or_404(ModelVersion.objects.select_related("parent"), pk=version_id)
    form = CompareForm(request.POST or None)
    if version.parent is not None:
        sizes = selectors.image_sizes(version.parent)
        if sizes:
            form.fields["display_size"].help_text += f" {version.parent.name}'s images: {', '.join(sizes)}."
    if request.method == "POST" and form.is_valid():
        try:
            outcome = services.comparison_request(user=request.user, version=version, **form.cleaned_data)
        except JobRejected as exc:
            form.add_error(None, str(exc))
        else:
            if outcome["job"] is not None:
                messages.success(request, f"Generating first (job #{outcome['job'].pk}); the studies follow.")
                return redirect("jobs:job_detail", pk=outcome["job"].pk)
            messages.success(request, "Created " + "; ".join(s.name for s in outcome["studies"]) + ".")
            return redirect("annotate:study_list")
    parent = version.parent.name if version.parent else "its parent"
    return render(
        request, "jobs/job_form.html", {"form": form, "title": f"Compare {version.name} with {parent}"}
    )


@require_POST
@permission_page("annotate.view_judgment")
@permission_page("jobs.add_job")
def judgments_export_new(request, study_id: int):
    """The results page's "export raw judgments as a job": queued, then followed on its page."""
    job = judgments_export_launch(user=request.user, study=get_object_or_404(Study, pk=study_id))
    messages.success(request, f"Export job #{job.pk} queued: the file is linked here when it is written.")
    return redirect("jobs:job_detail", pk=job.pk)


@require_GET
@permission_page("annotate.view_judgment")
@permission_page("jobs.view_job")
def job_export_file(request, pk: int):
    """A finished export job's file, streamed from the artifacts storage (never a link to
    the storage itself); 404 for any other job, or before the file is written."""
    opened = export_file_open(get_object_or_404(Job, pk=pk))
    if opened is None:
        raise Http404("this job has no export file")
    handle, name = opened
    return FileResponse(handle, as_attachment=True, filename=name, content_type=PARQUET_CONTENT_TYPE)


@require_POST
@permission_page("jobs.change_job")
def job_cancel(request, pk: int):
    try:
        job = services.job_cancel(get_object_or_404(Job, pk=pk))
    except JobRejected as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Job #{job.pk}: {'cancelled' if job.is_finished else 'stopping at the next step'}."
        )
    return redirect("jobs:job_detail", pk=pk)


@require_POST
@permission_page("jobs.add_job")
def job_retry(request, pk: int):
    try:
        job = services.job_retry(get_object_or_404(Job, pk=pk), user=request.user)
    except JobRejected as exc:
        messages.error(request, str(exc))
        return redirect("jobs:job_detail", pk=pk)
    messages.success(request, f"Job #{job.pk} queued again as a retry.")
    return redirect("jobs:job_detail", pk=job.pk)
