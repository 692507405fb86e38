"""Researcher pages: browse prompt sets, model versions and images; import data."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET

from evalhub.accounts.decorators import permission_page
from evalhub.catalog import limits, selectors
from evalhub.catalog.background_import import background_import_launcher
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.forms import ImageImportForm, ModelVersionForm, PromptSetImportForm
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_response import image_file_response
from evalhub.catalog.image_sources import ImageSourceError, ZipSource
from evalhub.catalog.metric_names import metrics_readable
from evalhub.catalog.models import GeneratedImage, ModelVersion, Prompt, PromptSet
from evalhub.catalog.prompt_import import decode_text, detect_format, parse_prompt_rows, prompt_set_import
from evalhub.catalog.uploads import read_text_file, request_too_large

PROMPT_SET_IMPORT_TITLE = "Import a prompt set"
IMAGE_IMPORT_TITLE = "Import generated images"
IMPORT_QUEUED = (
    "The archive ({size}) is stored; {label} imports it in the background. This page shows its "
    "progress; annotation goes on meanwhile."
)


@permission_page("catalog.view_promptset")
def prompt_set_list(request):
    return render(request, "catalog/prompt_set_list.html", {"prompt_sets": selectors.prompt_set_list()})


@permission_page("catalog.view_promptset")
def prompt_set_detail(request, pk: int):
    prompt_set = get_object_or_404(PromptSet, pk=pk)
    return render(
        request,
        "catalog/prompt_set_detail.html",
        {
            "prompt_set": prompt_set,
            "prompts": selectors.prompt_set_prompts(prompt_set),
            "model_counts": selectors.prompt_set_model_counts(prompt_set),
        },
    )


@permission_page("catalog.view_prompt")
def prompt_detail(request, pk: int):
    try:
        prompt = selectors.prompt_with_images(pk)
    except Prompt.DoesNotExist:
        raise Http404("No such prompt") from None
    return render(
        request,
        "catalog/prompt_detail.html",
        {"prompt": prompt, "image_groups": selectors.images_by_model(prompt)},
    )


@permission_page("catalog.view_modelversion")
def model_version_list(request):
    return render(request, "catalog/model_version_list.html", {"models": selectors.model_version_list()})


@permission_page("catalog.view_modelversion")
def model_version_detail(request, pk: int):
    model = get_object_or_404(ModelVersion.objects.select_related("parent"), pk=pk)
    return render(
        request,
        "catalog/model_version_detail.html",
        {
            "model": model,
            "lineage": model.lineage(),
            "children": model.children.all(),
            "final_metrics": metrics_readable(model.final_metrics),
        },
    )


@permission_page("catalog.add_modelversion")
def model_version_create(request):
    form = ModelVersionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        model = form.save()
        messages.success(request, f"Model version {model.name} created.")
        return redirect("catalog:model_version_detail", pk=model.pk)
    return render(request, "catalog/model_version_form.html", {"form": form})


# The import pages refuse a body over its limit from its Content-Length, before Django
# parses it. The CSRF check would parse it first (it reads the token from request.POST),
# so it runs after the size check: csrf_exempt outside, csrf_protect inside, as Django's
# documentation on upload handlers advises.


@csrf_exempt
@permission_page("catalog.import_data")
def prompt_set_import_view(request):
    if request.method == "POST":
        limit = limits.MAX_TEXT_FILE_BYTES.value + limits.FORM_OVERHEAD_BYTES
        if message := request_too_large(request, limit):
            return _refused(request, PromptSetImportForm(), PROMPT_SET_IMPORT_TITLE, message)
    return _prompt_set_import(request)


@csrf_protect
def _prompt_set_import(request):
    form = PromptSetImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            fmt = detect_format(upload.name)
            rows = parse_prompt_rows(read_text_file(upload, upload.name), fmt)
            prompt_set = prompt_set_import(
                name=form.cleaned_data["name"], rows=rows, description=form.cleaned_data["description"]
            )
        except ImportRejected as exc:
            form.add_error("file", str(exc))
        else:
            messages.success(request, f"Imported {len(rows)} prompts into {prompt_set.name}.")
            return redirect("catalog:prompt_set_detail", pk=prompt_set.pk)
    return _import_page(request, form, PROMPT_SET_IMPORT_TITLE)


@csrf_exempt
@permission_page("catalog.import_data")
def image_import_view(request):
    if request.method == "POST":
        if message := request_too_large(request, limits.MAX_UPLOAD_BYTES.value):
            form = ImageImportForm(initial=request.GET.dict())
            return _refused(request, form, IMAGE_IMPORT_TITLE, message)
    return _image_import(request)


@csrf_protect
def _image_import(request):
    form = ImageImportForm(request.POST or None, request.FILES or None, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        prompt_set = form.cleaned_data["prompt_set"]
        archive = form.cleaned_data["archive"]
        launcher = background_import_launcher()
        if launcher is not None and archive.size > limits.IMPORT_INLINE_MAX_BYTES.value:
            return _image_import_in_background(request, form, launcher)
        try:
            source = ZipSource.open(archive)
            result = generated_images_import(
                prompt_set=prompt_set,
                manifest=decode_text(source.manifest_bytes()),
                source=source,
                create_models=form.cleaned_data["create_models"],
            )
        except (ImportRejected, ImageSourceError) as exc:
            form.add_error("archive", str(exc))
        else:
            messages.success(
                request,
                f"Imported {result.created} images ({result.skipped} already present)"
                + (
                    f"; created model versions {', '.join(result.models_created)}"
                    if result.models_created
                    else ""
                )
                + ".",
            )
            return redirect("catalog:prompt_set_detail", pk=prompt_set.pk)
    return _import_page(request, form, IMAGE_IMPORT_TITLE)


def _image_import_in_background(request, form, launcher):
    """An archive above the inline limit: stored and queued as a job (evalhub.catalog.
    background_import); the researcher follows it on the job's page."""
    data = form.cleaned_data
    try:
        queued = launcher(
            user=request.user,
            prompt_set=data["prompt_set"],
            archive=data["archive"],
            create_models=data["create_models"],
        )
    except (ImportRejected, ImageSourceError) as exc:
        form.add_error("archive", str(exc))
        return _import_page(request, form, IMAGE_IMPORT_TITLE)
    size = filesizeformat(data["archive"].size)
    messages.success(request, IMPORT_QUEUED.format(size=size, label=queued.label))
    return redirect(queued.url)


def _import_page(request, form, title: str):
    """The form; a 400 when it comes back from a refused import."""
    status = 400 if request.method == "POST" else 200
    return render(request, "catalog/import_form.html", {"form": form, "title": title}, status=status)


def _refused(request, form, title: str, message: str):
    """The empty form with why the upload was refused unread."""
    context = {"form": form, "title": title, "upload_error": message}
    return render(request, "catalog/import_form.html", context, status=400)


@require_GET
@permission_page("catalog.view_generatedimage")
def image_file(request, public_id: str):
    return image_file_response(get_object_or_404(GeneratedImage, public_id=public_id))
