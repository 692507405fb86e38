"""The jobs REST API (researchers only): launch, follow, cancel, retry, compare versions.

Each view validates its input, calls one service, and shapes the output with
:class:`JobSerializer`.
"""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api import setting_field as study_setting_field
from annotate.models import Study
from annotate.study_settings import DISPLAY_SIZE
from evalhub.accounts.permissions import IsResearcher
from evalhub.catalog.models import ModelVersion, PromptSet
from evalhub.jobs import selectors, services
from evalhub.jobs.errors import JobRejected
from evalhub.jobs.folders import SFT_DATA_NAME_MAX
from evalhub.jobs.job_options import GENERATION_OPTIONS, TRAINING_OPTIONS
from evalhub.jobs.models import Job
from evalhub.jobs.option_fields import options_serializer
from training.options import generate_options_validate, train_options_validate


class JobsAPIView(APIView):
    permission_classes = [IsResearcher]

    def handle_exception(self, exc):
        if isinstance(exc, JobRejected):
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)


class JobSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True, help_text="null for imports and exports"
    )
    produced_version = serializers.SlugRelatedField(slug_field="name", read_only=True)
    produced_version_id = serializers.IntegerField(read_only=True, allow_null=True)
    prompt_set = serializers.SlugRelatedField(slug_field="name", read_only=True)
    source_study = serializers.SlugRelatedField(slug_field="name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress_percent = serializers.FloatField(read_only=True)
    export_file_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "state", "config", "model_version", "prompt_set", "source_study", "data_hash",
            "produced_version", "produced_version_id", "result", "progress_step", "progress_total",
            "progress_percent", "log_tail", "error", "cancel_requested", "retry_of", "worker", "created_by",
            "created_at", "started_at", "heartbeat_at", "finished_at", "export_file_url",
        ]  # fmt: skip

    def get_export_file_url(self, job) -> str | None:
        """A finished export's file (researchers only); null for other jobs."""
        if job.kind != Job.Kind.EXPORT or job.state != Job.State.SUCCEEDED or not job.result.get("file"):
            return None
        return reverse("jobs:job_export_file", args=[job.pk])


class SampleImageSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="the prompt's place in prompts")
    url = serializers.CharField(help_text="the image (PNG), for researchers")


class SampleStepSerializer(serializers.Serializer):
    step = serializers.IntegerField(help_text="0: before training")
    images = SampleImageSerializer(many=True)


class SamplesSerializer(serializers.Serializer):
    prompts = serializers.ListField(
        child=serializers.CharField(), help_text="the validation prompts, in order"
    )
    width = serializers.IntegerField(allow_null=True, help_text="the images' size in pixels")
    height = serializers.IntegerField(allow_null=True)
    steps = SampleStepSerializer(many=True, help_text="the rendered steps, newest first")


class JobDetailSerializer(JobSerializer):
    metrics = serializers.SerializerMethodField()
    samples = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["metrics", "samples"]

    def get_metrics(self, job) -> list[dict]:
        return selectors.job_metrics(job)

    @extend_schema_field(SamplesSerializer(allow_null=True))
    def get_samples(self, job) -> dict | None:
        """The validation renders so far; null before the first."""
        return selectors.job_samples(job)


class JobListApi(JobsAPIView):
    @extend_schema(responses=JobSerializer(many=True))
    def get(self, request):
        return Response(JobSerializer(selectors.jobs_recent(), many=True).data)


# The option fields, built from the trainer's declarations (evalhub.jobs.option_fields).
TrainingOptionFields = options_serializer("TrainingOptionFields", TRAINING_OPTIONS, train_options_validate)
GenerationOptionFields = options_serializer(
    "GenerationOptionFields", GENERATION_OPTIONS, generate_options_validate
)


class TrainingLaunchInputSerializer(TrainingOptionFields):
    base_version = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all())
    study = serializers.PrimaryKeyRelatedField(queryset=Study.objects.all(), required=False, allow_null=True)
    sft_data = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=SFT_DATA_NAME_MAX,
        help_text="For SFT, instead of a study: the name of an SFT data set (a folder under "
        "EVALHUB_JOBS_DIR/sft-data holding metadata.jsonl and its images); never a path.",
    )
    version_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class TrainingLaunchApi(JobsAPIView):
    @extend_schema(request=TrainingLaunchInputSerializer, responses={201: JobSerializer})
    def post(self, request):
        serializer = TrainingLaunchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        options = {k: data[k] for k in TRAINING_OPTIONS if k in data}
        job = services.training_launch(
            user=request.user,
            base_version=data["base_version"],
            study=data.get("study"),
            sft_data=data["sft_data"],
            version_name=data["version_name"],
            options=options,
        )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class GenerationOptionsSerializer(GenerationOptionFields):
    prompt_set = serializers.PrimaryKeyRelatedField(queryset=PromptSet.objects.all())


class CompareOptionsSerializer(GenerationOptionsSerializer):
    # The A/B study's setting, as the studies API declares it (annotate.study_settings).
    display_size = study_setting_field(DISPLAY_SIZE)


class GenerationLaunchInputSerializer(GenerationOptionsSerializer):
    model_version = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all())
    compare_after = serializers.BooleanField(default=False)


class GenerationLaunchApi(JobsAPIView):
    @extend_schema(request=GenerationLaunchInputSerializer, responses={201: JobSerializer})
    def post(self, request):
        serializer = GenerationLaunchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.generation_launch(user=request.user, **serializer.validated_data)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetailApi(JobsAPIView):
    @extend_schema(responses=JobDetailSerializer)
    def get(self, request, job_id: int):
        return Response(JobDetailSerializer(get_object_or_404(Job, pk=job_id)).data)


class JobCancelApi(JobsAPIView):
    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, job_id: int):
        job = services.job_cancel(get_object_or_404(Job, pk=job_id))
        return Response(JobSerializer(job).data)


class JobRetryApi(JobsAPIView):
    @extend_schema(request=None, responses={201: JobSerializer})
    def post(self, request, job_id: int):
        job = services.job_retry(get_object_or_404(Job, pk=job_id), user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class CompareWithParentApi(JobsAPIView):
    @extend_schema(
        request=CompareOptionsSerializer,
        responses=inline_serializer(
            "Comparison",
            {
                "studies": serializers.ListField(child=serializers.IntegerField()),
                "job": JobSerializer(allow_null=True),
            },
        ),
    )
    def post(self, request, version_id: int):
        version = get_object_or_404(ModelVersion, pk=version_id)
        serializer = CompareOptionsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcome = services.comparison_request(user=request.user, version=version, **serializer.validated_data)
        job = outcome["job"]
        return Response(
            {"studies": [s.pk for s in outcome["studies"]], "job": JobSerializer(job).data if job else None},
            status=status.HTTP_201_CREATED,
        )
