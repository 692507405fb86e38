"""The options every command that decides A/B items takes, declared once."""

from evalhub.results.winrates import AB_RULES


def add_decision_options(parser, *, result: str) -> None:
    """``--rule`` and ``--include-incomplete``; ``result`` names what a provisional run labels."""
    parser.add_argument(
        "--rule",
        choices=AB_RULES,
        help="Majority rule (default: the EVALHUB_MAJORITY_RULE setting), or dawid-skene for the "
        "reliability-weighted estimate.",
    )
    parser.add_argument(
        "--include-incomplete",
        action="store_true",
        help=f"Also count items with fewer than N judgments; the {result} is labelled provisional.",
    )
