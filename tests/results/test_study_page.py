"""The study page: the buttons its status allows, the full win-rate table as the exports
have it, an alignment study's rates, a best/worst study's pairs and their download, and
downloads that save rather than open."""

import io
import json
import re
import zipfile

import pytest

from annotate.models import Study
from annotate.services import study_create, study_update
from evalhub.results.preference_export import NO_PAIRS, preference_pairs_export
from evalhub.results.study_page import status_actions
from evalhub.results.winrate_formats import interval, p_value, percent
from evalhub.results.winrates import ab_comparison
from tests.results.conftest import MODEL_A, MODEL_B, ab_study, ab_with_alignment, vote
from tests.results.test_alignment import answer_all
from tests.results.test_preference_export import build, folder_files

A_WIN, TIE, B_WIN = ["A", "A", "A", "B", "tie"], ["tie", "tie", "tie", "A", "B"], ["B", "B", "B", "A", "tie"]


def page_of(client, user, study, query: str = "") -> str:
    client.force_login(user)
    response = client.get(f"/results/studies/{study.pk}/{query}")
    assert response.status_code == 200
    return response.content.decode()


def buttons(page: str) -> list[str]:
    actions = page[page.index('id="study-actions"') : page.index("<h2>Progress</h2>")]
    return re.findall(r'<button class="secondary" type="submit">([^<]+)</button>', actions)


@pytest.fixture
def decided_study(db):
    """Six flaws tasks, N = 5: three A wins, one tie, one B win, one reject; and one task of appeal short."""
    study = ab_study(6, criteria=("flaws", "appeal"), name="decided")
    flaws = list(study.tasks.filter(criterion="flaws").order_by("key"))
    appeal = list(study.tasks.filter(criterion="appeal").order_by("key"))
    plan = [A_WIN, A_WIN, A_WIN, TIE, B_WIN, ["reject"] * 5]
    vote(study, dict(zip(flaws, plan, strict=True)) | {appeal[0]: A_WIN, appeal[1]: ["A", "B"]})
    return study


def test_each_status_offers_only_the_changes_that_fit_it(client, alice, small_study):
    """Open: pause or close; paused: resume or close; closed: reopen, never pause or resume."""
    assert buttons(page_of(client, alice, small_study)) == ["Pause", "Close"]
    study_update(study=small_study, status="paused")
    assert buttons(page_of(client, alice, small_study)) == ["Resume", "Close"]
    study_update(study=small_study, status="closed")
    page = page_of(client, alice, small_study)
    assert buttons(page) == ["Reopen"] and "Pause" not in page and "Resume" not in page
    assert [status for status, _ in status_actions("closed")] == ["open"]


def test_reopening_a_closed_study_from_its_page(client, alice, small_study):
    """The Reopen button posts a status the service accepts."""
    study_update(study=small_study, status="closed")
    client.force_login(alice)
    client.post(f"/annotate/research/studies/{small_study.pk}/status/", {"status": "open"})
    assert Study.objects.get(pk=small_study.pk).status == "open"


def test_the_win_rate_table_shows_what_the_exports_carry(client, alice, decided_study):
    """Each share with its count and 95% interval in its cell; decided, rejects, incomplete, sign test."""
    page = page_of(client, alice, decided_study)
    table = page[page.index('<table id="winrates">') : page.index("</table>", page.index('id="winrates"'))]
    comparison = ab_comparison(decided_study)
    flaws, appeal = comparison.criteria
    assert (flaws.decided, flaws.rejects, flaws.incomplete, appeal.incomplete) == (5, 1, 0, 5)
    for result in (flaws, appeal):
        for share in (result.a_wins, result.tie, result.b_wins):
            assert f'{percent(share)} <span class="muted">({share.count})</span>' in table
            assert f'<span class="ci">95% CI {interval(share)}</span>' in table
        assert f'<td class="num">{p_value(result)}</td>' in table
    assert '<td class="num">5</td><td class="num">1</td>' in table  # flaws: decided, rejects
    assert "5 of 6" in table and "0 of 6" in table
    assert "[" in interval(flaws.a_wins) and "title=" not in table


def test_download_links_save_the_file_and_the_chart_still_shows(client, alice, decided_study):
    """Every link carries download; the chart answers inline, and as an attachment when asked."""
    page = page_of(client, alice, decided_study)
    url = f"/results/studies/{decided_study.pk}/winrates"
    links = re.findall(r'<a href="([^"]+)" download>', page)
    assert {f"{url}.{fmt}" for fmt in ("csv", "md", "tex", "json")} | {f"{url}.png?download=1"} <= set(links)
    assert f'<img src="{url}.png"' in page
    inline = client.get(f"{url}.png")
    assert inline["Content-Type"] == "image/png" and not inline.has_header("Content-Disposition")
    saved = client.get(f"{url}.png?download=1")
    assert saved["Content-Disposition"] == f'attachment; filename="winrates-study-{decided_study.pk}.png"'
    assert client.get(f"{url}.csv")["Content-Disposition"].startswith("attachment;")


def test_an_ab_study_shows_the_text_alignment_of_both_models(client, alice, db):
    """With an alignment study over both models, the page adds their alignment rates, as the exports do."""
    ab, alignment = ab_with_alignment()
    answer_all(
        alignment, {MODEL_A: [(True, False)] * 3, MODEL_B: [(True, True), (True, True), (False, False)]}
    )
    vote(ab, {task: A_WIN for task in ab.tasks.all()})
    page = page_of(client, alice, ab)
    table = page[page.index('<table id="ab-alignment">') :]
    assert f'A = {MODEL_A}</td><td class="num">100.0%</td>' in table
    assert f'B = {MODEL_B}</td><td class="num">50.0%</td>' in table
    assert "2 / 4" in table and f'href="/results/studies/{alignment.pk}/">al</a>' in table


def test_an_alignment_study_shows_each_models_rate_and_by_category(client, alice, db):
    """Per model and per category: the share of items matching the expected answer, with its interval."""
    _, alignment = ab_with_alignment(categories=("animals", "objects"))
    answer_all(
        alignment, {MODEL_A: [(True, False)] * 3, MODEL_B: [(True, True), (True, True), (False, False)]}
    )
    page = page_of(client, alice, alignment)
    rates = page[page.index('<table id="alignment-rates">') : page.index('<table id="alignment-categories">')]
    assert f'<td>{MODEL_A}</td><td class="num">100.0%</td>' in rates and "4 / 4" in rates
    assert f'<td>{MODEL_B}</td><td class="num">50.0%</td>' in rates and "2 / 4" in rates
    assert rates.count("[") == 2  # an interval per model
    categories = page[page.index('<table id="alignment-categories">') :]
    assert "<td>animals</td>" in categories and "<td>objects</td>" in categories
    assert categories.count("100.0% <span") == 2 and categories.count("50.0% <span") == 2
    assert "Win rates" not in page


def test_a_best_worst_study_counts_its_pairs_and_offers_them(client, alice, db, tmp_path):
    """Pairs decided, complete, incomplete and undecided tasks; a button for the preference pairs."""
    study = build(tmp_path / "src")
    page = page_of(client, alice, study)
    counts = page[page.index('<table id="pair-counts">') :]
    assert re.findall(r'<td class="num">(\d+)</td>', counts)[:4] == ["3", "3", "1", "0"]
    assert f'href="/results/studies/{study.pk}/preferences.zip" download>Download preference pairs' in page


def test_the_preference_pairs_download_is_the_export_folder(client, alice, db, tmp_path):
    """The ZIP holds the files the command writes, under <study>-preferences/, the same pairs."""
    study = build(tmp_path / "src", name="Best of Five!")
    client.force_login(alice)
    response = client.get(f"/results/studies/{study.pk}/preferences.zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="best-of-five-preferences.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    zipped = {
        name.removeprefix("best-of-five-preferences/"): archive.read(name) for name in archive.namelist()
    }
    assert all(name.startswith("best-of-five-preferences/") for name in archive.namelist())
    preference_pairs_export(study=study, folder=tmp_path / "out")
    written = folder_files(tmp_path / "out")
    # The card, pairs.jsonl, one Parquet shard, the manifest and 15 images.
    assert set(zipped) == set(written) and len(zipped) == 19
    assert zipped == written
    manifest = json.loads(zipped["manifest.json"])
    assert (manifest["study_id"], manifest["pairs"]) == (study.pk, 3)


def test_the_preference_pairs_are_for_researchers_and_explain_an_empty_study(
    client, alice, bob, db, tmp_path
):
    """Annotators get 403; a study without a decided pair answers 409 with the reason; other kinds too."""
    study = build(tmp_path / "src")
    client.force_login(bob)
    assert client.get(f"/results/studies/{study.pk}/preferences.zip").status_code == 403
    empty = study_create(
        name="empty",
        kind="best_worst",
        prompt_set=study.prompt_set,
        model_versions=list(study.model_versions.all()),
    )
    client.force_login(alice)
    response = client.get(f"/results/studies/{empty.pk}/preferences.zip")
    message = NO_PAIRS.format(name="empty", incomplete=4, tasks=4, overlap=5, undecided=0)
    assert response.status_code == 409 and response.content.decode() == message
    assert "Download preference pairs" not in page_of(client, alice, empty)
