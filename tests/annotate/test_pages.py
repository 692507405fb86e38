"""The researcher's study pages and the annotator's home."""

import uuid

from django.urls import reverse

from annotate.assignment import assignments_next
from annotate.models import Study
from annotate.services import study_create, task_set_gold
from annotate.submission import judgment_submit


def test_a_researcher_creates_a_study_from_the_form(client, alice, prompt_set, model_a, model_b):
    """The form creates the study and lands on its page."""
    client.force_login(alice)
    response = client.post(
        reverse("annotate:study_create"),
        {
            "name": "ab from the form",
            "kind": "ab",
            "prompt_set": prompt_set.pk,
            "model_a": model_a.pk,
            "model_b": model_b.pk,
            "criteria": ["flaws"],
            "overlap": 5,
            "lease_seconds": 300,
            "image_index": 0,
        },
    )
    study = Study.objects.get()
    assert response.status_code == 302 and response.url == reverse("results:study", args=[study.pk])
    assert study.tasks.count() == 3
    page = client.get(response.url).content.decode()
    assert "A = " in page and "B = " in page and "0 / 15" in page


def test_the_form_shows_the_services_error(client, alice, prompt_set, model_a):
    """An A/B study without model B re-renders with the reason."""
    client.force_login(alice)
    response = client.post(
        reverse("annotate:study_create"),
        {
            "name": "ab",
            "kind": "ab",
            "prompt_set": prompt_set.pk,
            "model_a": model_a.pk,
            "criteria": ["flaws"],
            "overlap": 5,
            "lease_seconds": 300,
            "image_index": 0,
        },
    )
    assert response.status_code == 200
    assert "needs two model versions, got 1" in response.content.decode()
    assert not Study.objects.exists()


def test_the_study_page_shows_progress_and_gold_accuracy(client, alice, annotators, prompt_set, model_a):
    """Judgments, annotators and gold accuracy appear on the study page."""
    study = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    for task in study.tasks.all():
        task_set_gold(study=study, task_key=task.key, answer={"positive": 0, "negative": 1})
    dana = annotators[0]
    for positive in (0, 0, 2):
        (lease,) = assignments_next(study_id=study.pk, annotator=dana).leases
        judgment_submit(
            token=lease.token,
            annotator=dana,
            client_id=uuid.uuid4(),
            answer={"positive": positive, "negative": 1},
        )
    client.force_login(alice)
    page = client.get(reverse("results:study", args=[study.pk])).content.decode()
    assert "3 / 3" in page
    assert "67%" in page


def test_pause_resume_and_close_from_the_page(client, alice, prompt_set, model_a):
    """The status buttons change the study's state."""
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    client.force_login(alice)
    url = reverse("annotate:study_status", args=[study.pk])
    client.post(url, {"status": "paused"})
    assert Study.objects.get().status == "paused"
    client.post(url, {"status": "open"})
    assert Study.objects.get().status == "open"
    response = client.post(url, {"status": "archived"}, follow=True)
    assert "status must be one of" in response.content.decode()
    assert Study.objects.get().status == "open"


def test_annotators_cannot_open_research_pages(client, bob, prompt_set, model_a):
    """Study pages name models: annotators get 403."""
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    client.force_login(bob)
    for url in (
        reverse("annotate:study_list"),
        reverse("annotate:study_create"),
        reverse("results:study", args=[study.pk]),
    ):
        assert client.get(url).status_code == 403
    assert (
        client.post(reverse("annotate:study_status", args=[study.pk]), {"status": "closed"}).status_code
        == 403
    )


def test_the_annotator_home_lists_open_studies_with_progress(client, bob, alice, prompt_set, model_a):
    """Open studies appear with a start link; paused ones do not; researchers are turned away."""
    open_study = study_create(
        name="open one", title="Open one", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a]
    )
    paused = study_create(
        name="paused one",
        title="Paused one",
        kind="alignment",
        prompt_set=prompt_set,
        model_versions=[model_a],
    )
    paused.status = "paused"
    paused.save()
    client.force_login(bob)
    page = client.get(reverse("annotate:home")).content.decode()
    assert "Open one" in page and "Paused one" not in page
    assert "open one" not in page  # the researchers' name
    assert reverse("annotate:label", args=[open_study.pk]) in page
    client.force_login(alice)
    assert client.get(reverse("annotate:home")).status_code == 403


def test_the_old_study_url_leads_to_the_study_page(client, alice, prompt_set, model_a):
    """A study's page is the results app's now; links to the old address follow."""
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    client.force_login(alice)
    response = client.get(f"/annotate/research/studies/{study.pk}/")
    assert response.status_code == 301 and response["Location"] == f"/results/studies/{study.pk}/"
    assert client.get(response["Location"]).status_code == 200
