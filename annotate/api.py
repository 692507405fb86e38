"""The annotation REST API (docs/annotation-api.md). One class per operation; each
validates its input, calls one service or selector, and shapes the output."""

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
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
from annotate.converters import MAX_ID, MAX_POSITION
from annotate.errors import AnnotationError
from annotate.models import Study, StudyModel
from annotate.services import study_create, study_update, task_set_gold
from annotate.study_settings import AT_CREATION, CHANGEABLE, Setting
from annotate.submission import MAX_TIMING_MS, Timing, judgment_submit
from evalhub.accounts.permissions import IsAnnotator, IsResearcher
from evalhub.api_errors import api_error_response
from evalhub.api_parsers import BoundedJSONParser
from evalhub.catalog.models import ModelVersion, PromptSet

# The study in the path, as its URL converter takes it (annotate.converters): an id outside
# the column's range matches no URL (404).
STUDY_ID = OpenApiParameter(
    "study_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, OpenApiParameter.PATH
)


class AnnotationAPIView(APIView):
    """Maps the engine's errors to their HTTP status, in the API's error shape
    (``{"detail": <message>, "code": <the status's code>}``, evalhub.api_errors)."""

    def handle_exception(self, exc):
        if isinstance(exc, AnnotationError):
            return api_error_response(exc.message, status=exc.status)
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
    parser_classes = [BoundedJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnlyNegotiation


# ---------------------------------------------------------------- annotators


class AnnotatorStudyListApi(AnnotatorAPIView):
    @extend_schema_serializer(component_name="AnnotatorStudyListOutput")
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
    @extend_schema_serializer(component_name="NextAssignmentsInput")
    class InputSerializer(serializers.Serializer):
        count = serializers.IntegerField(min_value=1, max_value=3, default=1)
        progress = serializers.BooleanField(
            default=True, help_text="Include the caller's progress (null when false)."
        )

    @extend_schema_serializer(component_name="NextAssignmentsOutput")
    class OutputSerializer(serializers.Serializer):
        assignments = AssignmentSerializer(many=True)
        progress = progress_serializer("ProgressIfAsked", allow_null=True)
        completion = inline_serializer(
            "CrowdCompletion",
            {"code": serializers.CharField(), "url": serializers.CharField(allow_blank=True)},
            required=False,
            help_text="A crowd participant's, once their quota is spent (annotate.crowd): the "
            "completion code and where to go; absent for everyone else.",
        )

    @extend_schema(request=InputSerializer, responses=OutputSerializer, parameters=[STUDY_ID])
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
        payload = {
            "assignments": selectors.assignment_payloads(result.leases),
            "progress": result.progress and selectors.progress_payload(result.progress),
        }
        if result.completion is not None:
            payload["completion"] = {"code": result.completion.code, "url": result.completion.url}
        return Response(payload)


class SubmitApi(AnnotatorAPIView):
    @extend_schema_serializer(component_name="SubmitInput")
    class InputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="SubmitTiming")
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

    @extend_schema_serializer(component_name="SubmitOutput")
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
    @extend_schema_serializer(component_name="ReportInput")
    class InputSerializer(serializers.Serializer):
        position = serializers.IntegerField(min_value=0, max_value=MAX_POSITION)
        reason = serializers.CharField(max_length=500, allow_blank=True, default="")

    @extend_schema_serializer(component_name="ReportOutput")
    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["reported", "duplicate"])
        position = serializers.IntegerField(help_text="The reported image's position (the first report's).")
        reason = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer})
    def post(self, request, token: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = lease_report_image(token=token, annotator=request.user, **data.validated_data)
        return Response(
            {
                "status": "reported" if result.created else "duplicate",
                "position": result.position,
                "reason": result.report.reason,
            },
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


# ---------------------------------------------------------------- researchers


def setting_field(setting: Setting, *, change: bool = False) -> serializers.Field:
    """An input field for a study setting: its type, bounds, choices, default and help,
    and its refusals worded as the service words them. ``change``: a field of a partial
    update, never required and without a default."""
    options = {"help_text": setting.help, "error_messages": _wording(setting, change=change)}
    if change or setting.elsewhere:
        options["required"] = False
    elif not setting.required:
        options["default"] = setting.default
    if setting.type is int:
        return serializers.IntegerField(min_value=setting.low, max_value=setting.high, **options)
    if setting.type is bool:
        return serializers.BooleanField(**options)
    if setting.type is list:
        child = serializers.ChoiceField(choices=setting.choices, error_messages=options["error_messages"])
        return serializers.ListField(child=child, **options)
    blank = setting.blank and not (change and setting.empty)
    if setting.choices:
        return serializers.ChoiceField(choices=setting.choices, allow_blank=blank, **options)
    validators = [setting.validate] if setting.pattern is not None else []
    return serializers.CharField(
        max_length=setting.max_length, allow_blank=blank, validators=validators, **options
    )


def _wording(setting: Setting, *, change: bool) -> dict[str, str]:
    """DRF's messages for what the declaration bounds, in the service's words. DRF fills
    in ``{input}`` for a choice; the bounds' validators are Django's, which fill in
    ``%(value)s``."""
    wording = {}
    if setting.invalid is not None:
        wording["invalid_choice"] = setting.invalid("{input}")
        wording["min_value"] = wording["max_value"] = setting.invalid("%(value)s")
    if setting.max_length is not None:
        wording["max_length"] = setting.too_long
    if setting.empty and (change or not setting.blank):
        wording["blank"] = setting.empty
    return wording


def settings_serializer(
    settings: tuple[Setting, ...], *, change: bool = False
) -> type[serializers.Serializer]:
    """A serializer with a field per setting, for an operation's InputSerializer to extend."""
    fields = {setting.name: setting_field(setting, change=change) for setting in settings}
    return type("StudySettingsSerializer", (serializers.Serializer,), fields)


# A study for researchers; ``studies_output`` serializes studies in a fixed number of queries.
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
            "access",
            "config",
            "guidelines",
            "created_at",
            "progress",
        ]

    def get_model_versions(self, study) -> list[dict]:
        return [{"name": sm.model_version.name, "role": sm.role} for sm in study.study_models.all()]

    def get_progress(self, study) -> dict:
        return self.context["progress"][study.pk]


def studies_for_output() -> QuerySet[Study]:
    """Studies with their prompt set and models, as StudyOutputSerializer reads them: two
    queries for any number of studies."""
    models = StudyModel.objects.select_related("model_version").order_by("pk")
    return Study.objects.select_related("prompt_set").prefetch_related(Prefetch("study_models", models))


def studies_output(studies: list[Study]) -> list[dict]:
    """Studies from ``studies_for_output``, serialized with the figures of all of them
    counted together (annotate.selectors.studies_progress)."""
    context = {"progress": selectors.studies_progress(studies)}
    return StudyOutputSerializer(studies, many=True, context=context).data


def study_output(study_id: int) -> dict:
    return studies_output([get_object_or_404(studies_for_output(), pk=study_id)])[0]


class NamedField(serializers.SlugRelatedField):
    """A catalog row by its name. A name with a NUL character is refused as unknown before
    the look-up: no name holds one, and PostgreSQL refuses it in a query (a 500)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class StudyListCreateApi(AnnotationAPIView):
    permission_classes = [IsResearcher]

    @extend_schema_serializer(component_name="StudyListCreateInput")
    class InputSerializer(settings_serializer(AT_CREATION)):
        # The settings at creation (annotate.study_settings), then the prompt set and models.
        prompt_set = NamedField(slug_field="name", queryset=PromptSet.objects.all())
        model_versions = NamedField(
            slug_field="name",
            queryset=ModelVersion.objects.all(),
            many=True,
            help_text="[model] for best/worst, [A, B] for A/B, one or more for alignment.",
        )

    @extend_schema(responses=StudyOutputSerializer(many=True))
    def get(self, request):
        return Response(studies_output(list(studies_for_output())))

    @extend_schema(request=InputSerializer, responses={201: StudyOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        study = study_create(created_by=request.user, **data.validated_data)
        return Response(study_output(study.pk), status=status.HTTP_201_CREATED)


class StudyDetailApi(AnnotationAPIView):
    permission_classes = [IsResearcher]

    # The settings that can change (annotate.study_settings), each optional.
    @extend_schema_serializer(component_name="StudyDetailInput")
    class InputSerializer(settings_serializer(CHANGEABLE, change=True)):
        pass

    @extend_schema(responses=StudyOutputSerializer, parameters=[STUDY_ID])
    def get(self, request, study_id: int):
        return Response(study_output(study_id))

    @extend_schema(request=InputSerializer, responses=StudyOutputSerializer, parameters=[STUDY_ID])
    def patch(self, request, study_id: int):
        study = get_object_or_404(Study, pk=study_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        study_update(study=study, **data.validated_data)
        return Response(study_output(study_id))


class StudyGoldApi(AnnotationAPIView):
    permission_classes = [IsResearcher]

    @extend_schema_serializer(component_name="StudyGoldInput")
    class InputSerializer(serializers.Serializer):
        task_key = serializers.CharField()
        answer = serializers.JSONField(allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            "Gold", {"task_key": serializers.CharField(), "is_gold": serializers.BooleanField()}
        ),
        parameters=[STUDY_ID],
    )
    def post(self, request, study_id: int):
        study = get_object_or_404(Study, pk=study_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = task_set_gold(study=study, **data.validated_data)
        return Response({"task_key": task.key, "is_gold": task.is_gold})
