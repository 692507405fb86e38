"""The annotators page: each annotator's studies, judgments, time on screen, agreement with
the majority and gold accuracy pooled over every study, reports and last answer."""

import re
from datetime import UTC, datetime

import pytest

from annotate.models import ImageReport, Judgment
from annotate.services import task_set_gold
from evalhub.results.annotator_overview import annotator_studies, annotators_overview
from tests.results.conftest import ab_study, vote

MOSTLY_A, MOSTLY_B = ["A", "A", "A", "A", "B"], ["B", "B", "B", "A", "A"]
LATEST = datetime(2031, 5, 4, 3, 2, tzinfo=UTC)


def judgment(study, task, username) -> Judgment:
    return Judgment.objects.get(task=task, annotator__username=username)


@pytest.fixture
def two_studies(db, bob):
    """voter0–voter4 in two A/B studies (N = 5): three tasks 4–1 for A, then two tasks 3–2 for B.

    voter3 agrees with the majority 3 times of 3, then 0 of 2; each study has one gold task,
    which leaves the tables (evalhub.results.judged), so agreement pools 2 of 3; voter0's
    times on screen are 2, 4, 6 s, then 10 s and none; voter1 reports two broken images. Bob,
    an annotator, has not started."""
    first, second = ab_study(3, name="first"), ab_study(2, name="second")
    vote(first, {task: MOSTLY_A for task in first.tasks.all()})
    vote(second, {task: MOSTLY_B for task in second.tasks.all()})
    for study in (first, second):
        task = study.tasks.order_by("key").first()
        task_set_gold(study=study, task_key=task.key, answer=judgment(study, task, "voter0").answer)
        ImageReport.objects.create(
            task=task,
            image=task.task_images.first().image,
            annotator=judgment(study, task, "voter1").annotator,
        )
    times = [*first.tasks.order_by("key"), *second.tasks.order_by("key")]
    for task, seconds in zip(times, (2.0, 4.0, 6.0, 10.0, None), strict=True):
        Judgment.objects.filter(task=task, annotator__username="voter0").update(on_screen_seconds=seconds)
    Judgment.objects.filter(task=times[-1], annotator__username="voter0").update(answered_at=LATEST)
    return first, second


def test_the_figures_pool_every_study(two_studies):
    """Counts add up across studies; agreement and gold accuracy pool their counts; one median of all."""
    rows = {row.username: row for row in annotators_overview("plurality")}
    assert set(rows) == {"bob", "voter0", "voter1", "voter2", "voter3", "voter4"}
    voter0, voter3, voter4 = rows["voter0"], rows["voter3"], rows["voter4"]
    assert (voter0.studies, voter0.judgments, voter0.median_seconds) == (2, 5, 5.0)
    assert (
        voter0.agreement_with_majority,
        voter3.agreement_with_majority,
        voter4.agreement_with_majority,
    ) == (
        1.0,
        2 / 3,
        0.0,
    )
    assert (voter0.gold_answered, voter0.gold_accuracy) == (2, 1.0)
    assert (voter3.gold_answered, voter3.gold_accuracy) == (2, 0.5)
    assert voter4.gold_accuracy == 0.0
    assert (rows["voter1"].reports, voter0.reports) == (2, 0)
    assert voter0.last_active == LATEST
    assert (rows["voter1"].median_seconds, rows["bob"].judgments, rows["bob"].last_active) == (None, 0, None)


def test_the_page_lists_every_annotator_for_researchers_only(client, alice, bob, two_studies):
    """Researchers see a row per annotator, its figures and a link to its studies; annotators get 403."""
    client.force_login(bob)
    assert client.get("/results/annotators/").status_code == 403
    client.force_login(alice)
    page = client.get("/results/annotators/").content.decode()
    table = page[page.index('<table id="annotators">') :]
    rows = re.findall(r"<tr><td>(.*?)</tr>", table, re.DOTALL)
    assert len(rows) == 6 and "alice" not in table
    (voter3,) = [row for row in rows if ">voter3</a>" in row]
    cells = re.findall(r'<td class="num">([^<]*)</td>', voter3)
    assert cells == ["2", "5", "—", "67%", "2", "50%", "0"]
    (bob_row,) = [row for row in rows if "bob" in row]
    assert "href" not in bob_row and bob_row.count("—") == 4
    voter0 = Judgment.objects.filter(annotator__username="voter0").first().annotator
    assert f'href="/results/annotators/{voter0.pk}/">voter0</a>' in page
    assert "2031-05-04 03:02" in page


def test_an_annotators_page_shows_each_study_as_its_page_does(client, alice, two_studies):
    """Per study: the study page's figures for this annotator, reports and the latest answer."""
    first, second = two_studies
    voter3 = Judgment.objects.filter(annotator__username="voter3").first().annotator
    rows = {row["study"].name: row for row in annotator_studies(voter3, "plurality")}
    assert [rows[name]["agreement_with_majority"] for name in ("first", "second")] == [1.0, 0.0]
    assert [rows[name]["judgments"] for name in ("first", "second")] == [3, 2]
    client.force_login(alice)
    page = client.get(f"/results/annotators/{voter3.pk}/").content.decode()
    assert (
        f'href="/results/studies/{first.pk}/">first</a>' in page
        and f'href="/results/studies/{second.pk}/">second</a>' in page
    )
    assert "100%" in page and "0%" in page
