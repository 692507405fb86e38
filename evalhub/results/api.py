"""Results over the REST API (researchers only): a study's win rates, and its workforce
(annotators with their flags and status; excluding and reinstating one)."""

import json

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api import STUDY_ID, AnnotationAPIView
from annotate.models import Study, WorkforceEvent
from annotate.workforce import REASON_LENGTH, annotator_exclude, annotator_reinstate
from evalhub.accounts.permissions import IsResearcher
from evalhub.api_errors import ERROR_COMPONENT
from evalhub.results.errors import ResultsError
from evalhub.results.views import provisional_requested
from evalhub.results.winrate_formats import to_json
from evalhub.results.winrates import ab_comparison
from evalhub.results.workforce_flags import FLAGS
from evalhub.results.workforce_page import ACTIVE, EXCLUDED, annotator_in_study, workforce_rows

USERNAME_PATTERN = r"^[\w.@+-]{1,150}$"  # Django's username validator, and the column's length
USERNAME = OpenApiParameter(
    "username", {"type": "string", "pattern": USERNAME_PATTERN, "maxLength": 150}, OpenApiParameter.PATH
)
CONFLICT = OpenApiResponse(
    response={"$ref": f"#/components/schemas/{ERROR_COMPONENT}"},
    description="The annotator is already excluded (exclude) or is not excluded (reinstate) (conflict).",
)


class StudyWinRatesApi(APIView):
    """The study's win-rate table, as in ``winrates.json``; 409 while nothing is decided.
    ``?provisional=1`` counts items with fewer than N judgments (``"provisional": true``)."""

    permission_classes = [IsResearcher]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, study_id: int):
        study = get_object_or_404(Study, pk=study_id)
        try:
            comparison = ab_comparison(study, include_incomplete=provisional_requested(request))
        except ResultsError as exc:
            return Response({"detail": str(exc)}, status=409)
        (table,) = json.loads(to_json([comparison]))
        return Response(table)


class WorkforceFlagSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=FLAGS, help_text="fast, constant or low_gold.")
    text = serializers.CharField(help_text="The figures behind the flag, in words.")


class WorkforceAnnotatorSerializer(serializers.Serializer):
    username = serializers.CharField()
    judgments = serializers.IntegerField(help_text="Valid judgments: those the tables count.")
    excluded_judgments = serializers.IntegerField(help_text="Judgments left out because of an exclusion.")
    median_seconds = serializers.FloatField(
        allow_null=True, help_text="Median time on screen per task; null when no judgment carries it."
    )
    gold_answered = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True, help_text="0 to 1; null without gold answers.")
    agreement_with_majority = serializers.FloatField(
        allow_null=True, help_text="0 to 1, over valid votes on decided complete items; null without any."
    )
    flags = WorkforceFlagSerializer(many=True)
    status = serializers.ChoiceField(choices=(ACTIVE, EXCLUDED))
    excluded_at = serializers.DateTimeField(allow_null=True)
    excluded_reason = serializers.CharField(allow_blank=True)


class WorkforceReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=REASON_LENGTH,
        allow_blank=True,
        help_text="Why; kept with the event. A blank reason is refused (400).",
    )


class WorkforceEventSerializer(serializers.Serializer):
    annotator = serializers.CharField(source="annotator.username")
    action = serializers.ChoiceField(choices=WorkforceEvent.Action.choices)
    reason = serializers.CharField()
    by = serializers.CharField(
        source="by.username", allow_null=True, help_text="The researcher; null: the study's quality rule."
    )
    judgments = serializers.IntegerField(
        help_text="Judgments the action left out of the tables or brought back."
    )
    tasks_reopened = serializers.IntegerField()
    at = serializers.DateTimeField()


class StudyWorkforceApi(AnnotationAPIView):
    """The study's annotators: judgments, time on screen, gold, agreement, flags, status."""

    permission_classes = [IsResearcher]

    @extend_schema(responses=WorkforceAnnotatorSerializer(many=True), parameters=[STUDY_ID])
    def get(self, request, study_id: int):
        study = get_object_or_404(Study, pk=study_id)
        return Response(WorkforceAnnotatorSerializer(workforce_rows(study), many=True).data)


def _workforce_change(request, study_id: int, username: str, service) -> Response:
    """Exclude or reinstate (``service``, annotate.workforce) the named annotator, with the body's reason."""
    study = get_object_or_404(Study, pk=study_id)
    data = WorkforceReasonSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    annotator = annotator_in_study(study, username=username)
    event = service(study=study, annotator=annotator, reason=data.validated_data["reason"], by=request.user)
    return Response(WorkforceEventSerializer(event).data)


class StudyWorkforceExcludeApi(AnnotationAPIView):
    """Exclude an annotator from the study: their judgments leave the tables, their tasks reopen."""

    permission_classes = [IsResearcher]

    @extend_schema(
        request=WorkforceReasonSerializer,
        responses={200: WorkforceEventSerializer, 409: CONFLICT},
        parameters=[STUDY_ID, USERNAME],
    )
    def post(self, request, study_id: int, username: str):
        return _workforce_change(request, study_id, username, annotator_exclude)


class StudyWorkforceReinstateApi(AnnotationAPIView):
    """Let an excluded annotator work again; their judgments count again where there is room."""

    permission_classes = [IsResearcher]

    @extend_schema(
        request=WorkforceReasonSerializer,
        responses={200: WorkforceEventSerializer, 409: CONFLICT},
        parameters=[STUDY_ID, USERNAME],
    )
    def post(self, request, study_id: int, username: str):
        return _workforce_change(request, study_id, username, annotator_reinstate)
