"""What a study's page shows, read for the view (``evalhub.results.views.study_page``) and
for tests: the buttons its status allows, and its results by kind — the A/B win-rate table
with everything the exports carry, an alignment study's rates per model (and per prompt
category), a best/worst study's pairs — with agreement and the annotators' figures."""

from django.urls import reverse

from annotate import selectors
from annotate.crowd import crowd_link_template
from annotate.exposure import study_exposure_blocks
from annotate.models import Study
from annotate.study_settings import config_group
from evalhub.results.agreement import annotator_stats, study_agreement
from evalhub.results.alignment import alignment_rates, alignment_rates_by_category, alignment_study_for
from evalhub.results.best_worst import best_worst_votes, decided_pairs, pair_counts
from evalhub.results.errors import ResultsError
from evalhub.results.majority import majority_rule
from evalhub.results.winrates import ab_comparison

# The status changes a study's page offers, by status, as (new status, button). The service
# takes any status at any time; a closed study is not paused or resumed, only reopened.
STATUS_ACTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    Study.Status.OPEN: ((Study.Status.PAUSED, "Pause"), (Study.Status.CLOSED, "Close")),
    Study.Status.PAUSED: ((Study.Status.OPEN, "Resume"), (Study.Status.CLOSED, "Close")),
    Study.Status.CLOSED: ((Study.Status.OPEN, "Reopen"),),
}


def status_actions(status: str) -> tuple[tuple[str, str], ...]:
    """The (new status, button label) pairs a study in ``status`` offers."""
    return STATUS_ACTIONS.get(status, ())


def crowd_context(study: Study, base_url: str = "") -> dict:
    """The study's crowd settings, and its crowd link with Prolific's placeholders
    (``base_url``: the site's address, for an absolute link)."""
    crowd = config_group(study, "crowd")
    link = crowd_link_template(base_url + reverse("crowd_entry", args=[study.pk]))
    return {"crowd": crowd, "crowd_link": link if crowd["crowd_enabled"] else ""}


def study_page_context(study: Study, *, provisional: bool, base_url: str = "") -> dict:
    """Everything the study page shows; ``provisional`` counts items with fewer than N judgments."""
    per_annotator = annotator_stats(study, majority_rule()).to_dict("index")
    return {
        "study": study,
        "models": study.study_models.select_related("model_version"),
        "actions": status_actions(study.status),
        "progress": selectors.study_progress(study),
        "blocks": study_exposure_blocks(study),
        "annotators": [
            row | per_annotator.get(row["username"], {}) for row in selectors.study_annotators(study)
        ],
        "agreement": study_agreement(study),
        "provisional": provisional,
        **crowd_context(study, base_url),
        **KIND_RESULTS[study.kind](study, provisional),
    }


def ab_results(study: Study, provisional: bool) -> dict:
    """The win-rate table (None, with the reason, while nothing is decided), and its
    text-alignment columns (role, model, rate or None) with the alignment study they come from."""
    try:
        comparison = ab_comparison(study, include_incomplete=provisional)
    except ResultsError as exc:
        return {"comparison": None, "results_message": str(exc)}
    aligned = comparison.alignment_a or comparison.alignment_b
    return {
        "comparison": comparison,
        "results_message": "",
        "ab_alignment": [
            ("A", comparison.model_a, comparison.alignment_a),
            ("B", comparison.model_b, comparison.alignment_b),
        ],
        "alignment_source": alignment_study_for(study) if aligned else None,
    }


def alignment_results(study: Study, provisional: bool) -> dict:
    """The alignment rate of each model, and per prompt category where prompts have one."""
    rule = majority_rule()
    return {
        "alignment_rates": list(alignment_rates(study, rule, include_incomplete=provisional).values()),
        "alignment_categories": alignment_rates_by_category(study, rule, include_incomplete=provisional),
        "rule": rule,
    }


def best_worst_results(study: Study, provisional: bool) -> dict:
    """How many winner/loser pairs the judgments decide, of how many tasks."""
    votes = best_worst_votes(study, include_incomplete=provisional)
    return {"pair_counts": pair_counts(study, votes, decided_pairs(votes))}


KIND_RESULTS = {
    Study.Kind.AB: ab_results,
    Study.Kind.ALIGNMENT: alignment_results,
    Study.Kind.BEST_WORST: best_worst_results,
}
