"""One win-rate table, five renderings with the same numbers: CSV, Markdown, LaTeX,
JSON and a PNG of stacked win/tie/lose bars. Percentages have one decimal, as in the
paper's tables. A provisional table (one that counts items with fewer than N judgments)
says so in each: a note above the Markdown and LaTeX tables and on the page, the chart's
title, a ``provisional`` column in CSV and field in JSON. The CSV writes a model or study
name that a spreadsheet would read as a formula as text (evalhub.csv_safe)."""

import io
import json

from evalhub.csv_safe import csv_writer
from evalhub.results.winrates import Comparison, CriterionResult, Share

CRITERION_LABELS = {"flaws": "Visual flaws", "appeal": "Visual appeal"}
FORMATS = ("csv", "md", "tex", "json", "png")
PROVISIONAL_NOTE = (
    "Provisional: counts items with fewer than their N judgments; a running table, not a result."
)
CHART_TITLE = "Win rates"


def percent(share: Share) -> str:
    return "—" if share.share is None else f"{100 * share.share:.1f}%"


def interval(share: Share) -> str:
    if share.ci_low is None:
        return "—"
    return f"[{100 * share.ci_low:.1f}, {100 * share.ci_high:.1f}]"


def p_value(result: CriterionResult) -> str:
    if result.p_value is None:
        return "—"
    return f"{result.p_value:.2g}" if result.p_value >= 1e-4 else f"{result.p_value:.1e}"


def _criteria(comparisons: list[Comparison]) -> list[str]:
    seen: list[str] = []
    for comparison in comparisons:
        for result in comparison.criteria:
            if result.criterion not in seen:
                seen.append(result.criterion)
    return seen


def alignment_percent(rate) -> str:
    return "—" if rate is None or rate.rate is None else f"{100 * rate.rate:.1f}%"


def _has_alignment(comparisons: list[Comparison]) -> bool:
    return any(c.alignment_a or c.alignment_b for c in comparisons)


def _cell(comparison: Comparison, criterion: str) -> CriterionResult | None:
    return next((r for r in comparison.criteria if r.criterion == criterion), None)


def _provisional(comparisons: list[Comparison]) -> bool:
    return any(c.provisional for c in comparisons)


def to_json(comparisons: list[Comparison]) -> str:
    """Full-precision shares, plus the one-decimal ``percent`` the other formats print."""
    data = [c.as_dict() for c in comparisons]
    for comparison in data:
        for result in comparison["criteria"]:
            for key in ("a_wins", "tie", "b_wins"):
                share = result[key]["share"]
                result[key]["percent"] = None if share is None else round(100 * share, 1)
    return json.dumps(data, indent=2)


def to_csv(comparisons: list[Comparison]) -> str:
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(
        [
            "model_a",
            "model_b",
            "criterion",
            "a_wins_pct",
            "tie_pct",
            "b_wins_pct",
            "decided",
            "rejects",
            "a_wins",
            "ties",
            "b_wins",
            "a_wins_ci",
            "tie_ci",
            "b_wins_ci",
            "sign_test_p",
            "study",
            "alignment_a_pct",
            "alignment_b_pct",
            "items",
            "incomplete",
            "provisional",
        ]
    )
    for comparison in comparisons:
        for r in comparison.criteria:
            shares = (r.a_wins, r.tie, r.b_wins)
            writer.writerow(
                [
                    comparison.model_a,
                    comparison.model_b,
                    r.criterion,
                    *(percent(s).rstrip("%") for s in shares),
                    r.decided,
                    r.rejects,
                    *(s.count for s in shares),
                    *(interval(s) for s in shares),
                    p_value(r),
                    comparison.study,
                    alignment_percent(comparison.alignment_a).rstrip("%"),
                    alignment_percent(comparison.alignment_b).rstrip("%"),
                    r.items,
                    r.incomplete,
                    "true" if comparison.provisional else "false",
                ]
            )
    return out.getvalue()


def to_markdown(comparisons: list[Comparison]) -> str:
    criteria = _criteria(comparisons)
    header = ["Model A", "Model B"]
    for criterion in criteria:
        label = CRITERION_LABELS.get(criterion, criterion)
        header += [f"{label}: A wins", "Tie", "B wins"]
    alignment = _has_alignment(comparisons)
    if alignment:
        header += ["Text alignment A", "Text alignment B"]
    lines = [f"**{PROVISIONAL_NOTE}**", ""] if _provisional(comparisons) else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for comparison in comparisons:
        cells = [comparison.model_a, comparison.model_b]
        for criterion in criteria:
            r = _cell(comparison, criterion)
            cells += [percent(s) for s in (r.a_wins, r.tie, r.b_wins)] if r else ["—"] * 3
        if alignment:
            cells += [alignment_percent(comparison.alignment_a), alignment_percent(comparison.alignment_b)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| Model A | Model B | Criterion | Decided | Rejects | Items | Incomplete | A wins 95% CI | "
        "Tie 95% CI | B wins 95% CI | Sign test p |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for comparison in comparisons:
        for r in comparison.criteria:
            label = CRITERION_LABELS.get(r.criterion, r.criterion)
            lines.append(
                f"| {comparison.model_a} | {comparison.model_b} | {label} | {r.decided} | {r.rejects} | "
                f"{r.items} | {r.incomplete} | {interval(r.a_wins)} | {interval(r.tie)} | "
                f"{interval(r.b_wins)} | {p_value(r)} |"
            )
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _tex(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(char, char) for char in text)


def to_latex(comparisons: list[Comparison]) -> str:
    criteria = _criteria(comparisons)
    alignment = _has_alignment(comparisons)
    columns = "ll" + "rrr" * len(criteria) + ("rr" if alignment else "")
    groups = " & ".join(rf"\multicolumn{{3}}{{c}}{{{CRITERION_LABELS.get(c, c)}}}" for c in criteria)
    if alignment:
        groups += r" & \multicolumn{2}{c}{Text alignment}"
    lines = [rf"\begin{{tabular}}{{{columns}}}", r"\toprule"]
    if _provisional(comparisons):
        lines.append(rf"\multicolumn{{{len(columns)}}}{{l}}{{\textit{{{_tex(PROVISIONAL_NOTE)}}}}} \\")
    lines += [
        rf" & & {groups} \\",
        "Model A & Model B"
        + " & A wins & Tie & B wins" * len(criteria)
        + (" & A & B" if alignment else "")
        + r" \\",
        r"\midrule",
    ]
    for comparison in comparisons:
        cells = [_tex(comparison.model_a), _tex(comparison.model_b)]
        for criterion in criteria:
            r = _cell(comparison, criterion)
            cells += [_tex(percent(s)) for s in (r.a_wins, r.tie, r.b_wins)] if r else ["--"] * 3
        if alignment:
            cells += [
                _tex(alignment_percent(comparison.alignment_a)),
                _tex(alignment_percent(comparison.alignment_b)),
            ]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_png(comparisons: list[Comparison]) -> bytes:
    """Stacked horizontal bars, one per comparison and criterion: A wins, tie, B wins."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    bars = [(c, r) for c in comparisons for r in c.criteria]
    figure, axes = plt.subplots(figsize=(8, 0.6 * len(bars) + 1.2), dpi=120)
    colours = {"A wins": "#2e7d32", "Tie": "#9e9e9e", "B wins": "#c62828"}
    for row, (_, r) in enumerate(bars):
        left = 0.0
        for label, share in (("A wins", r.a_wins), ("Tie", r.tie), ("B wins", r.b_wins)):
            width = 100 * (share.share or 0)
            axes.barh(row, width, left=left, color=colours[label], label=label if row == 0 else None)
            if width >= 6:
                axes.text(
                    left + width / 2,
                    row,
                    f"{width:.1f}%",
                    ha="center",
                    va="center",
                    color="white",
                    fontsize=8,
                )
            left += width
    axes.set_yticks(range(len(bars)))
    axes.set_yticklabels(
        [f"{c.model_a} vs {c.model_b}\n{CRITERION_LABELS.get(r.criterion, r.criterion)}" for c, r in bars],
        fontsize=8,
    )
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of decided items")
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=8)
    title = CHART_TITLE
    if _provisional(comparisons):
        title = f"{CHART_TITLE}. {PROVISIONAL_NOTE}"
        figure.suptitle(PROVISIONAL_NOTE, color="#c62828", fontsize=9)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Title": title})
    plt.close(figure)
    return out.getvalue()


RENDERERS = {"csv": to_csv, "md": to_markdown, "tex": to_latex, "json": to_json, "png": to_png}


def render_table(comparisons: list[Comparison], fmt: str) -> str | bytes:
    if fmt not in RENDERERS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return RENDERERS[fmt](comparisons)
