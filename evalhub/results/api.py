"""Results over the REST API (researchers only)."""

import json

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.models import Study
from evalhub.accounts.permissions import IsResearcher
from evalhub.results.errors import ResultsError
from evalhub.results.views import provisional_requested
from evalhub.results.winrate_formats import to_json
from evalhub.results.winrates import ab_comparison


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
