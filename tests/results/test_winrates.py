"""Win-rate tables of A/B studies: de-randomized sides, ties, rejects, statistics, and
the paper's Table 1 figures reproduced in every export format."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils.html import escape
from PIL import Image

from evalhub.results.ab_outcomes import NO_COMPLETE, ab_task_outcomes
from evalhub.results.errors import ResultsError
from evalhub.results.winrate_formats import CHART_TITLE, PROVISIONAL_NOTE, render_table, to_csv
from evalhub.results.winrates import ab_comparison
from tests.results.conftest import MODEL_A, MODEL_B, ab_study, vote

A_WIN, TIE, B_WIN = ["A", "A", "A", "B", "tie"], ["tie", "tie", "tie", "A", "B"], ["B", "B", "B", "A", "tie"]


def tasks_of(study):
    return list(study.tasks.order_by("key"))


def test_sides_are_undone_before_counting(small_study):
    """A vote for A counts for A whichever side A was shown on."""
    tasks = tasks_of(small_study)
    vote(small_study, {task: A_WIN for task in tasks})
    sides = {t.task_images.get(position=0).image.model_version.name for t in tasks}
    outcomes = ab_task_outcomes(small_study, "plurality")
    assert set(outcomes["outcome"]) == {"A"}
    assert len(sides) in (1, 2)  # sides were random; the result does not depend on them


def test_a_two_two_one_split_is_a_tie(small_study):
    """A level top counts as a tie for A/B."""
    first, *_ = tasks_of(small_study)
    vote(small_study, {first: ["A", "A", "B", "B", "tie"]})
    assert ab_task_outcomes(small_study, "plurality").loc[first.pk, "outcome"] == "tie"


def test_rejects_are_counted_apart_and_left_out_of_the_shares(small_study):
    """Two rejected items do not dilute A's share."""
    tasks = tasks_of(small_study)
    vote(
        small_study,
        {
            tasks[0]: A_WIN,
            tasks[1]: A_WIN,
            tasks[2]: B_WIN,
            tasks[3]: TIE,
            tasks[4]: ["reject"] * 3 + ["A", "B"],
            tasks[5]: ["reject"] * 5,
        },
    )
    (flaws,) = ab_comparison(small_study).criteria
    assert (flaws.a_wins.count, flaws.tie.count, flaws.b_wins.count) == (2, 1, 1)
    assert (flaws.decided, flaws.rejects) == (4, 2)
    assert flaws.a_wins.share == pytest.approx(0.5)


def test_an_all_tie_study_has_no_sign_test(small_study):
    """With every item tied, A and B share nothing and the sign test is undefined."""
    vote(small_study, {task: TIE for task in tasks_of(small_study)})
    (flaws,) = ab_comparison(small_study).criteria
    assert (flaws.tie.share, flaws.a_wins.share, flaws.p_value) == (1.0, 0.0, None)
    assert "—" in render_table([ab_comparison(small_study)], "md")


def test_incomplete_items_are_left_out_and_reported(small_study):
    """Only tasks with their N judgments count; every task with fewer is reported as incomplete."""
    tasks = tasks_of(small_study)
    vote(small_study, {tasks[0]: A_WIN, tasks[1]: ["A", "A", "B"]})
    comparison = ab_comparison(small_study)
    (flaws,) = comparison.criteria
    assert (flaws.decided, flaws.items, flaws.incomplete, flaws.a_wins.count) == (1, 6, 5, 1)
    assert comparison.provisional is False


def test_the_provisional_table_counts_incomplete_items(small_study):
    """With incomplete items included the same votes give two decided items, flagged provisional."""
    tasks = tasks_of(small_study)
    vote(small_study, {tasks[0]: A_WIN, tasks[1]: ["A", "A", "B"]})
    comparison = ab_comparison(small_study, include_incomplete=True)
    (flaws,) = comparison.criteria
    assert (flaws.decided, flaws.items, flaws.incomplete, flaws.a_wins.count) == (2, 6, 5, 2)
    assert comparison.provisional is True


def test_an_open_study_of_one_vote_items_has_no_table_but_says_why(db):
    """Two one-vote items of forty: no table, a message with the counts, and a provisional one."""
    study = ab_study(40, name="open")
    tasks = tasks_of(study)
    vote(study, {tasks[0]: ["A"], tasks[1]: ["tie"]})
    message = NO_COMPLETE.format(name="open", complete=0, items=40, overlap=5, incomplete=40, started=2)
    with pytest.raises(ResultsError) as raised:
        ab_comparison(study)
    assert str(raised.value) == message
    assert "0 of 40 items have their 5 judgments" in message and "?provisional=1" in message
    (flaws,) = ab_comparison(study, include_incomplete=True).criteria
    assert (flaws.decided, flaws.a_wins.count, flaws.tie.count, flaws.incomplete) == (2, 1, 1, 40)


def test_a_study_without_decided_items_says_so(small_study):
    """No judgments, or only rejects: a clear message instead of a division by zero."""
    with pytest.raises(ResultsError, match="has no decided items yet"):
        ab_comparison(small_study)
    vote(small_study, {task: ["reject"] * 5 for task in tasks_of(small_study)})
    with pytest.raises(ResultsError, match="has no decided items yet"):
        ab_comparison(small_study)


def test_intervals_and_sign_test(small_study):
    """Wilson intervals bracket each share; the sign test compares A with B on untied items."""
    tasks = tasks_of(small_study)
    vote(small_study, {t: A_WIN for t in tasks[:5]} | {tasks[5]: B_WIN})
    (flaws,) = ab_comparison(small_study).criteria
    assert flaws.a_wins.ci_low < 5 / 6 < flaws.a_wins.ci_high
    assert flaws.a_wins.ci_low == pytest.approx(0.4365, abs=1e-3)
    assert flaws.p_value == pytest.approx(0.21875)


@pytest.fixture
def table_1_study(db):
    """600 prompts whose majorities are 385 A wins, 159 ties and 56 B wins."""
    study = ab_study(600, name="Ours vs Baseline")
    tasks = tasks_of(study)
    plan = [A_WIN] * 385 + [TIE] * 159 + [B_WIN] * 56
    vote(study, dict(zip(tasks, plan, strict=True)))
    return study


def test_the_paper_table_1_figures_in_every_format(table_1_study, tmp_path):
    """385/159/56 of 600 reads 64.2% / 26.5% / 9.3% in CSV, Markdown, LaTeX, JSON and the chart."""
    comparison = ab_comparison(table_1_study)
    (flaws,) = comparison.criteria
    assert (comparison.model_a, comparison.model_b) == (MODEL_A, MODEL_B)
    assert (flaws.a_wins.count, flaws.tie.count, flaws.b_wins.count, flaws.decided) == (385, 159, 56, 600)

    out = io.StringIO()
    call_command("export_winrates", "Ours vs Baseline", "--out", str(tmp_path), stdout=out)
    csv_text = (tmp_path / "winrates.csv").read_text()
    assert f"{MODEL_A},{MODEL_B},flaws,64.2,26.5,9.3,600,0,385,159,56," in csv_text
    markdown = (tmp_path / "winrates.md").read_text()
    assert f"| {MODEL_A} | {MODEL_B} | 64.2% | 26.5% | 9.3% |" in markdown
    latex = (tmp_path / "winrates.tex").read_text()
    assert r"ours-pixel-simpo & baseline-latent & 64.2\% & 26.5\% & 9.3\% \\" in latex
    data = json.loads((tmp_path / "winrates.json").read_text())
    shares = [round(100 * data[0]["criteria"][0][k]["share"], 1) for k in ("a_wins", "tie", "b_wins")]
    assert shares == [64.2, 26.5, 9.3]
    with Image.open(tmp_path / "winrates.png") as chart:
        assert chart.format == "PNG" and chart.width > 300
    assert flaws.p_value < 1e-40


def test_several_comparisons_stack_into_one_table(table_1_study, db):
    """Two studies make two rows of one table, like the paper's Table 1."""
    second = ab_study(4, name="Ours vs Regular SFT")
    vote(second, {task: B_WIN for task in tasks_of(second)})
    table = to_csv([ab_comparison(table_1_study), ab_comparison(second)])
    assert len(table.strip().splitlines()) == 3
    assert table.splitlines()[2].startswith(f"{MODEL_A},{MODEL_B},flaws,0.0,0.0,100.0,4,")


def test_the_command_reports_unknown_studies_and_formats(small_study, tmp_path):
    """Bad arguments are command errors."""
    with pytest.raises(CommandError, match="no study named 'nope'"):
        call_command("export_winrates", "nope", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="unknown format"):
        call_command("export_winrates", "study", "--out", str(tmp_path), "--format", "xlsx")
    with pytest.raises(CommandError, match="has no decided items yet"):
        call_command("export_winrates", "study", "--out", str(tmp_path))


def test_the_study_page_shows_the_table_and_chart(client, alice, table_1_study):
    """The researcher's study page shows the shares, links every format and embeds the chart."""
    client.force_login(alice)
    page = client.get(f"/results/studies/{table_1_study.pk}/").content.decode()
    assert "64.2%" in page and "26.5%" in page and "9.3%" in page
    for fmt in ("csv", "md", "tex", "json", "png"):
        assert f"/results/studies/{table_1_study.pk}/winrates.{fmt}" in page
        response = client.get(f"/results/studies/{table_1_study.pk}/winrates.{fmt}")
        assert response.status_code == 200
        if fmt != "png":
            assert "64.2" in response.content.decode()


def test_downloads_are_for_researchers_and_explain_an_empty_study(client, alice, bob, small_study):
    """Annotators get 403; a study without decided items answers 409 with the reason."""
    client.force_login(bob)
    assert client.get(f"/results/studies/{small_study.pk}/winrates.csv").status_code == 403
    client.force_login(alice)
    response = client.get(f"/results/studies/{small_study.pk}/winrates.csv")
    assert response.status_code == 409 and "has no decided items yet" in response.content.decode()
    assert "has no decided items yet" in client.get(f"/results/studies/{small_study.pk}/").content.decode()


def test_the_api_serves_the_table_to_researchers_only(client, alice, bob, table_1_study, small_study):
    """The API returns the JSON table; 409 without decided items; 403 for annotators."""
    client.force_login(alice)
    data = client.get(f"/api/studies/{table_1_study.pk}/winrates/").json()
    assert [data["criteria"][0][k]["percent"] for k in ("a_wins", "tie", "b_wins")] == [64.2, 26.5, 9.3]
    empty = client.get(f"/api/studies/{small_study.pk}/winrates/")
    assert empty.status_code == 409 and "no decided items" in empty.json()["detail"]
    client.force_login(bob)
    assert client.get(f"/api/studies/{table_1_study.pk}/winrates/").status_code == 403


@pytest.fixture
def running_study(db):
    """Six flaws tasks, N = 5: one with its five judgments (A), one with three (A), four with none."""
    study = ab_study(6, name="running")
    tasks = tasks_of(study)
    vote(study, {tasks[0]: A_WIN, tasks[1]: ["A", "A", "B"]})
    return study


def test_every_format_labels_a_provisional_table(running_study):
    """CSV column, Markdown and LaTeX note, JSON field, chart title: provisional or not."""
    final = [ab_comparison(running_study)]
    running = [ab_comparison(running_study, include_incomplete=True)]
    assert to_csv(final).splitlines()[0].endswith(",items,incomplete,provisional")
    assert to_csv(final).splitlines()[1].endswith(",6,5,false")
    assert to_csv(running).splitlines()[1].endswith(",6,5,true")
    assert f"**{PROVISIONAL_NOTE}**" in render_table(running, "md")
    assert PROVISIONAL_NOTE not in render_table(final, "md")
    assert "| 1 | 0 | 6 | 5 |" in render_table(final, "md") and "| 2 | 0 | 6 | 5 |" in render_table(
        running, "md"
    )
    assert r"\textit{Provisional: " in render_table(running, "tex")
    assert "Provisional" not in render_table(final, "tex")
    assert [json.loads(render_table(c, "json"))[0]["provisional"] for c in (final, running)] == [False, True]
    assert json.loads(render_table(running, "json"))[0]["criteria"][0]["incomplete"] == 5
    with Image.open(io.BytesIO(render_table(running, "png"))) as chart:
        assert chart.text["Title"] == f"{CHART_TITLE}. {PROVISIONAL_NOTE}"
    with Image.open(io.BytesIO(render_table(final, "png"))) as chart:
        assert chart.text["Title"] == CHART_TITLE


def test_the_command_writes_a_provisional_table_on_request(running_study, tmp_path):
    """`export_winrates --include-incomplete` counts the incomplete item and says so."""
    call_command(
        "export_winrates", "running", "--out", str(tmp_path), "--format", "json,md", stdout=io.StringIO()
    )
    assert json.loads((tmp_path / "winrates.json").read_text())[0]["criteria"][0]["decided"] == 1
    call_command(
        "export_winrates",
        "running",
        "--out",
        str(tmp_path),
        "--format",
        "json,md",
        "--include-incomplete",
        stdout=io.StringIO(),
    )
    data = json.loads((tmp_path / "winrates.json").read_text())[0]
    assert (data["provisional"], data["criteria"][0]["decided"]) == (True, 2)
    assert PROVISIONAL_NOTE in (tmp_path / "winrates.md").read_text()


def test_the_page_shows_the_incomplete_count_and_links_the_provisional_view(client, alice, running_study):
    """Complete items by default with the incomplete count; ?provisional=1 is labelled and links back."""
    client.force_login(alice)
    url = f"/results/studies/{running_study.pk}/"
    page = client.get(url).content.decode()
    assert "5 of 6" in page and 'href="?provisional=1"' in page and PROVISIONAL_NOTE not in page
    assert f"/results/studies/{running_study.pk}/winrates.csv?provisional=1" not in page
    provisional = client.get(url + "?provisional=1").content.decode()
    assert PROVISIONAL_NOTE in provisional and '<span class="tag">provisional</span>' in provisional
    assert f'href="{url}">Complete items only</a>' in provisional
    assert f"/results/studies/{running_study.pk}/winrates.csv?provisional=1" in provisional
    assert f"/results/studies/{running_study.pk}/winrates.png?provisional=1" in provisional


def test_downloads_and_the_api_take_the_provisional_switch(client, alice, running_study):
    """`?provisional=1` on a download or the API counts the incomplete item and flags the table."""
    client.force_login(alice)
    csv_text = client.get(f"/results/studies/{running_study.pk}/winrates.csv").content.decode()
    assert csv_text.splitlines()[1].endswith(",6,5,false")
    csv_text = client.get(f"/results/studies/{running_study.pk}/winrates.csv?provisional=1").content.decode()
    assert csv_text.splitlines()[1].endswith(",6,5,true")
    data = client.get(f"/api/studies/{running_study.pk}/winrates/").json()
    assert (data["provisional"], data["criteria"][0]["decided"], data["criteria"][0]["incomplete"]) == (
        False,
        1,
        5,
    )
    data = client.get(f"/api/studies/{running_study.pk}/winrates/?provisional=1").json()
    assert (data["provisional"], data["criteria"][0]["decided"]) == (True, 2)


def test_without_complete_items_every_view_points_to_the_provisional_one(client, alice, db):
    """Page, download and API explain the counts and the switch; the switch shows the running table."""
    study = ab_study(4, name="early")
    vote(study, {tasks_of(study)[0]: ["B", "B"]})
    message = NO_COMPLETE.format(name="early", complete=0, items=4, overlap=5, incomplete=4, started=1)
    client.force_login(alice)
    page = client.get(f"/results/studies/{study.pk}/").content.decode()
    assert escape(message) in page and 'href="?provisional=1"' in page
    response = client.get(f"/results/studies/{study.pk}/winrates.md")
    assert (response.status_code, response.content.decode()) == (409, message)
    assert client.get(f"/api/studies/{study.pk}/winrates/").json()["detail"] == message
    assert "100.0%" in client.get(f"/results/studies/{study.pk}/?provisional=1").content.decode()


def test_the_csv_writes_names_a_spreadsheet_would_run_as_text(client, alice, db, tmp_path):
    """Model and study names starting with = + - @ come out with a quote in front
    (evalhub.csv_safe), in the download and in the command's file alike; numbers as they are."""
    study = ab_study(2, name="@study", models=("=model-a", "-model-b"))
    vote(study, {task: A_WIN for task in study.tasks.all()})
    client.force_login(alice)
    downloaded = client.get(f"/results/studies/{study.pk}/winrates.csv").content.decode()
    call_command("export_winrates", "@study", "--out", str(tmp_path), stdout=io.StringIO())
    for text in (downloaded, (tmp_path / "winrates.csv").read_text()):
        (row,) = csv.DictReader(io.StringIO(text))
        assert (row["model_a"], row["model_b"], row["study"]) == ("'=model-a", "'-model-b", "'@study")
        assert (row["a_wins_pct"], row["decided"]) == ("100.0", "2")
