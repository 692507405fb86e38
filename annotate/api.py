"""The annotation REST API (docs/annotation-api.md). One class per operation; each
validates its input, calls one service or selector, and shapes the output."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate import errors, selectors
from annotate.assignment import (
    assignments_next,
    lease_heartbeat,
    lease_report_image,
    lease_skip,
)
from annotate.errors import AnnotationError
from annotate.models import Study
from annotate.permissions import IsAnnotator, IsResearcher
from annotate.services import study_create, study_update, task_set_gold
from annotate.submission import MAX_TIMING_MS, Timing, judgment_submit
from evalhub.catalog.models import ModelVersion, PromptSet


class AnnotationAPIView(APIView):
    """Maps the engine's errors to their HTTP status with a ``detail`` message."""

    def handle_exception(self, exc):
        if isinstance(exc, AnnotationError):
            return Response({"detail": exc.message}, status=exc.status)
        return super().handle_exception(exc)


class JSONOnlyNegotiation(BaseContentNegotiation):
    """JSON whatever the Accept header says: there is nothing else to choose from (DRF's
    documented way to skip negotiation)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class AnnotatorAPIView(AnnotationAPIView):
    """The labeling page's calls: annotators only, JSON in and out (no browsable pages,
    no form parsing or content negotiation on the hot path)."""

    permission_classes = [IsAnnotator]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnlyNegotiation


# ---------------------------------------------------------------- annotators


class AnnotatorStudyListApi(AnnotatorAPIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        title = serializers.CharField(help_text="The study's title for annotators.")
        kind = serializers.CharField()
        guidelines = serializers.CharField()
        done = serializers.IntegerField()
        remaining = serializers.IntegerField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        return Response(self.OutputSerializer(selectors.studies_open_for(request.user), many=True).data)


class AssignmentSerializer(serializers.Serializer):
    token = serializers.CharField()
    kind = serializers.CharField()
    criterion = serializers.CharField(allow_null=True)
    prompt = serializers.CharField(allow_null=True)
    images = inline_serializer(
        "AssignmentImage",
        {
            "position": serializers.IntegerField(),
            "url": serializers.CharField(),
            "width": serializers.IntegerField(),
            "height": serializers.IntegerField(),
        },
        many=True,
    )
    questions = inline_serializer(
        "AssignmentQuestion", {"id": serializers.IntegerField(), "text": serializers.CharField()}, many=True
    )
    choices = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField()


def progress_serializer(name: str = "Progress", **kwargs):
    return inline_serializer(
        name, {"done": serializers.IntegerField(), "remaining": serializers.IntegerField()}, **kwargs
    )


class NextAssignmentsApi(AnnotatorAPIView):
    class InputSerializer(serializers.Serializer):
        count = serializers.IntegerField(min_value=1, max_value=3, default=1)
        progress = serializers.BooleanField(
            default=True, help_text="Include the caller's progress (null when false)."
        )

    class OutputSerializer(serializers.Serializer):
        assignments = AssignmentSerializer(many=True)
        progress = progress_serializer("ProgressIfAsked", allow_null=True)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, study_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = assignments_next(
            study_id=study_id,
            annotator=request.user,
            count=data.validated_data["count"],
            with_progress=data.validated_data["progress"],
        )
        # Built from an allow-list already (selectors.assignment_payloads); the serializer
        # above documents the shape.
        return Response(
            {
                "assignments": selectors.assignment_payloads(result.leases),
                "progress": result.progress and selectors.progress_payload(result.progress),
            }
        )


class SubmitApi(AnnotatorAPIView):
    class InputSerializer(serializers.Serializer):
        class TimingSerializer(serializers.Serializer):
            shown_for_ms = serializers.IntegerField(
                min_value=0,
                max_value=MAX_TIMING_MS,
                help_text="From the moment the task became visible to the answer.",
            )
            on_screen_ms = serializers.IntegerField(
                min_value=0,
                max_value=MAX_TIMING_MS,
                help_text="The part of shown_for_ms with the tab visible and the window focused.",
            )
            answered_ms_ago = serializers.IntegerField(
                min_value=0,
                max_value=MAX_TIMING_MS,
                help_text="From the answer to this attempt: 0 at first, more on a resend.",
            )

            class Meta:
                ref_name = "SubmitTiming"

            def validate(self, attrs) -> Timing:
                if attrs["on_screen_ms"] > attrs["shown_for_ms"]:
                    raise serializers.ValidationError({"on_screen_ms": errors.ON_SCREEN_OVER_SHOWN})
                return Timing(**attrs)

        client_id = serializers.UUIDField()
        answer = serializers.JSONField()
        timing = TimingSerializer(
            required=False,
            allow_null=True,
            help_text="The page's durations, in ms of its own clock; the judgment's displayed_at and "
            "on_screen_seconds stay empty without them.",
        )

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["recorded", "duplicate"])
        progress = progress_serializer()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer})
    def post(self, request, token: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = judgment_submit(token=token, annotator=request.user, **data.validated_data)
        return Response(
            {
                "status": "recorded" if result.created else "duplicate",
                "progress": selectors.progress_payload(result.progress),
            },
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class HeartbeatApi(AnnotatorAPIView):
    @extend_schema(
        request=None, responses=inline_serializer("Heartbeat", {"expires_at": serializers.DateTimeField()})
    )
    def post(self, request, token: str):
        lease = lease_heartbeat(token=token, annotator=request.user)
        return Response({"expires_at": lease.expires_at})


class SkipApi(AnnotatorAPIView):
    @extend_schema(request=None, responses=inline_serializer("Skipped", {"status": serializers.CharField()}))
    def post(self, request, token: str):
        lease_skip(token=token, annotator=request.user)
        return Response({"status": "skipped"})


class ReportApi(AnnotatorAPIView):
    class InputSerializer(serializers.Serializer):
        position = serializers.IntegerField(min_value=0)
        reason = serializers.CharField(max_length=500, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer,
        responses={201: inline_serializer("Reported", {"status": serializers.CharField()})},
    )
    def post(self, request, token: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lease_report_image(token=token, annotator=request.user, **data.validated_data)
        return Response({"status": "reported"}, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------- researchers


class StudyOutputSerializer(serializers.ModelSerializer):
    prompt_set = serializers.CharField(source="prompt_set.name")
    model_versions = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = [
            "id",
            "name",
            "title",
            "kind",
            "status",
            "prompt_set",
            "model_versions",
            "overlap",
            "lease_seconds",
            "exposure",
            "config",
            "guidelines",
            "created_at",
            "progress",
        ]

    def get_model_versions(self, study) -> list[dict]:
        return [
            {"name": sm.model_version.name, "role": sm.role}
            for sm in study.study_models.select_related("model_version")
        ]

    def get_progress(self, study) -> dict:
        return selectors.study_progress(study)


class StudyListCreateApi(AnnotationAPIView):
    permission_classes = [IsResearcher]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(
            max_length=200, help_text="The researchers' name; annotators never see it."
        )
        title = serializers.CharField(
            max_length=200,
            allow_blank=True,
            default="",
            help_text="What annotators see; empty for a neutral title from the kind and criteria. "
            "Must not contain a model version's name.",
        )
        kind = serializers.ChoiceField(choices=Study.Kind.choices)
        prompt_set = serializers.SlugRelatedField(slug_field="name", queryset=PromptSet.objects.all())
        model_versions = serializers.SlugRelatedField(
            slug_field="name",
            queryset=ModelVersion.objects.all(),
            many=True,
            help_text="[model] for best/worst, [A, B] for A/B, one or more for alignment.",
        )
        criteria = serializers.ListField(
            child=serializers.ChoiceField(choices=["flaws", "appeal"]), default=["flaws", "appeal"]
        )
        overlap = serializers.IntegerField(default=5)
        lease_seconds = serializers.IntegerField(default=300)
        image_index = serializers.IntegerField(min_value=0, default=0)
        guidelines = serializers.CharField(allow_blank=True, default="")
        skip_incomplete = serializers.BooleanField(default=False)
        exposure = serializers.ChoiceField(
            choices=Study.Exposure.choices,
            required=False,
            help_text="A/B only: isolated (default) keeps the study's images apart from every task "
            "that shows them with their prompt or in a one-model study; shared opts out.",
        )
        display_size = serializers.CharField(
            required=False,
            allow_blank=True,
            help_text="A/B only: WIDTHxHEIGHT to serve both sides resampled to one size, when the "
            "two models' images differ in size.",
        )

    @extend_schema(responses=StudyOutputSerializer(many=True))
    def get(self, request):
        return Response(StudyOutputSerializer(Study.objects.select_related("prompt_set"), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: StudyOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        study = study_create(created_by=request.user, **data.validated_data)
        return Response(StudyOutputSerializer(study).data, status=status.HTTP_201_CREATED)


class StudyDetailApi(AnnotationAPIView):
    permission_classes = [IsResearcher]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        title = serializers.CharField(max_length=200, required=False)
        status = serializers.ChoiceField(choices=Study.Status.choices, required=False)
        overlap = serializers.IntegerField(required=False)
        lease_seconds = serializers.IntegerField(required=False)
        guidelines = serializers.CharField(allow_blank=True, required=False)

    @extend_schema(responses=StudyOutputSerializer)
    def get(self, request, study_id: int):
        return Response(StudyOutputSerializer(get_object_or_404(Study, pk=study_id)).data)

    @extend_schema(request=InputSerializer, responses=StudyOutputSerializer)
    def patch(self, request, study_id: int):
        study = get_object_or_404(Study, pk=study_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        study = study_update(study=study, **data.validated_data)
        return Response(StudyOutputSerializer(study).data)


class StudyGoldApi(AnnotationAPIView):
    permission_classes = [IsResearcher]

    class InputSerializer(serializers.Serializer):
        task_key = serializers.CharField()
        answer = serializers.JSONField(allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            "Gold", {"task_key": serializers.CharField(), "is_gold": serializers.BooleanField()}
        ),
    )
    def post(self, request, study_id: int):
        study = get_object_or_404(Study, pk=study_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = task_set_gold(study=study, **data.validated_data)
        return Response({"task_key": task.key, "is_gold": task.is_gold})


# drf-spectacular names a component after its class, so the nested Input/Output
# serializers of different operations would collide in the schema.
for _api in (
    AnnotatorStudyListApi,
    NextAssignmentsApi,
    SubmitApi,
    ReportApi,
    StudyListCreateApi,
    StudyDetailApi,
    StudyGoldApi,
):
    for _role in ("InputSerializer", "OutputSerializer"):
        if _role in vars(_api):
            vars(_api)[_role].Meta = type(
                "Meta", (), {"ref_name": _api.__name__.removesuffix("Api") + _role[:-10]}
            )
