"""Bad inputs to the jobs API, one row each: the 400 or 404, the message the researcher reads,
and nothing left behind — no job, version or study, no queued message, no file.

Found by an attacker's test: ``max_steps: 10**30`` and ``seed: 2**70`` were queued (201)
and failed in the worker; ``sft_data: "/etc"`` was queued too, the launch telling whether a
path exists on the server. SFT data is now named, never given as a path
(evalhub.jobs.folders), and every whole-number option has an upper bound
(training.options)."""

from dataclasses import dataclass, field

import pytest
from django.db.models.functions import Now

from annotate.models import Study
from evalhub.catalog.models import ModelVersion
from evalhub.jobs import errors, runner
from evalhub.jobs.models import Job
from tests.jobs.conftest import SFT_SET, client_for, queued
from tests.responses import said
from training.options import MAX_BATCH, MAX_RANK, MAX_SEED, MAX_STEPS, NEGATIVE, OUT_OF_RANGE, TOO_LARGE

PAST_64_BITS = 99999999999999999999  # > 2**64


def unknown_sft(name: str) -> str:
    return errors.UNKNOWN_SFT_DATA.format(name=name, folder="sft-data", names=SFT_SET)


def out_of_range(name: str, interval: str, value: int) -> str:
    return OUT_OF_RANGE.format(name=name, interval=interval, value=value)


def too_large(name: str, cap: int, value: int) -> str:
    return TOO_LARGE.format(name=name, cap=cap, value=value)


@dataclass(frozen=True)
class Bad:
    """A request (``{version}``, ``{prompt_set}``, ``{study}``, ``{failed_job}`` fill in the
    rows of the fixture), and the answer: a status and, where the API words it, a message."""

    name: str
    method: str
    path: str
    body: dict = field(default_factory=dict)
    status: int = 400
    message: str | None = None


SFT = {"base_version": "{version}", "method": "sft"}
SIMPO = {"base_version": "{version}", "study": "{study}"}
GENERATE = {"model_version": "{version}", "prompt_set": "{prompt_set}"}

CASES = [
    # Steps, seeds and sizes past their bounds: refused before any job exists.
    Bad(
        "max_steps 10**30",
        "post",
        "/api/jobs/training/",
        {**SIMPO, "max_steps": 10**30},
        message=too_large("max_steps", MAX_STEPS, 10**30),
    ),
    Bad(
        "seed 2**70",
        "post",
        "/api/jobs/training/",
        {**SIMPO, "seed": 2**70},
        message=too_large("seed", MAX_SEED, 2**70),
    ),
    Bad(
        "seed negative",
        "post",
        "/api/jobs/training/",
        {**SIMPO, "seed": -1},
        message=NEGATIVE.format(name="seed", value=-1),
    ),
    Bad(
        "batch_size 2**64",
        "post",
        "/api/jobs/training/",
        {**SIMPO, "batch_size": 2**64},
        message=too_large("batch_size", MAX_BATCH, 2**64),
    ),
    Bad(
        "lora_rank 10**30",
        "post",
        "/api/jobs/training/",
        {**SIMPO, "lora_rank": 10**30},
        message=too_large("lora_rank", MAX_RANK, 10**30),
    ),
    Bad(
        "generation seed 2**70",
        "post",
        "/api/jobs/generation/",
        {**GENERATE, "seed": 2**70},
        message=too_large("seed", MAX_SEED, 2**70),
    ),
    Bad(
        "generation steps 10**30",
        "post",
        "/api/jobs/generation/",
        {**GENERATE, "steps": 10**30},
        message=out_of_range("steps", "[1, 1000]", 10**30),
    ),
    Bad(
        "images_per_prompt 2**64",
        "post",
        "/api/jobs/generation/",
        {**GENERATE, "images_per_prompt": 2**64},
        message=out_of_range("images_per_prompt", "[1, 64]", 2**64),
    ),
    # SFT data by path: refused, in words that do not depend on what the path points at.
    Bad(
        "sft_data /etc",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": "/etc"},
        message=unknown_sft("/etc"),
    ),
    Bad(
        "sft_data a missing path",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": "/nowhere/at/all"},
        message=unknown_sft("/nowhere/at/all"),
    ),
    Bad(
        "sft_data up and back in",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": f"../sft-data/{SFT_SET}"},
        message=unknown_sft(f"../sft-data/{SFT_SET}"),
    ),
    Bad(
        "sft_data a set's subfolder",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": f"{SFT_SET}/."},
        message=unknown_sft(f"{SFT_SET}/."),
    ),
    Bad(
        "sft_data the sets' folder",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": "."},
        message=unknown_sft("."),
    ),
    Bad(
        "sft_data a link out of the sets' folder",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": "escape"},
        message=unknown_sft("escape"),
    ),
    Bad(
        "sft_data a folder without metadata",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": "empty"},
        message=unknown_sft("empty"),
    ),
    Bad(
        "sft_data too long",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": "x" * 101},
        message="Ensure this field has no more than 100 characters.",
    ),
    Bad(
        "sft_data a list",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": [SFT_SET]},
        message="Not a valid string.",
    ),
    Bad(
        "sft_data for a preference method",
        "post",
        "/api/jobs/training/",
        {**SFT, "method": "simpo", "sft_data": SFT_SET},
        message=errors.FOLDER_TRAINS_SFT_ONLY,
    ),
    Bad(
        "sft_data and a study",
        "post",
        "/api/jobs/training/",
        {**SIMPO, "sft_data": SFT_SET},
        message=errors.STUDY_OR_FOLDER,
    ),
    Bad(
        "sft_data with a NUL",
        "post",
        "/api/jobs/training/",
        {**SFT, "sft_data": f"{SFT_SET}\x00"},
        message="Null characters are not allowed.",
    ),
    Bad(
        "version_name with a NUL",
        "post",
        "/api/jobs/training/",
        {**SIMPO, "version_name": "v\x00"},
        message="Null characters are not allowed.",
    ),
    # Unknown ids, huge ids.
    Bad(
        "base_version past 64 bits",
        "post",
        "/api/jobs/training/",
        {**SIMPO, "base_version": PAST_64_BITS},
        message=f'Invalid pk "{PAST_64_BITS}" - object does not exist.',
    ),
    Bad(
        "study past 64 bits",
        "post",
        "/api/jobs/training/",
        {**SIMPO, "study": 2**70},
        message=f'Invalid pk "{2**70}" - object does not exist.',
    ),
    Bad(
        "model_version unknown",
        "post",
        "/api/jobs/generation/",
        {**GENERATE, "model_version": 987654},
        message='Invalid pk "987654" - object does not exist.',
    ),
    Bad(
        "prompt_set as text",
        "post",
        "/api/jobs/generation/",
        {**GENERATE, "prompt_set": "animals"},
        message="Incorrect type. Expected pk value, received str.",
    ),
    Bad("job past 64 bits", "get", f"/api/jobs/{PAST_64_BITS}/", status=404),
    Bad("cancel a job past 64 bits", "post", f"/api/jobs/{2**64}/cancel/", status=404),
    Bad("retry an unknown job", "post", "/api/jobs/987654/retry/", status=404),
    Bad(
        "compare a version past 64 bits",
        "post",
        f"/api/model-versions/{PAST_64_BITS}/compare/",
        {"prompt_set": "{prompt_set}"},
        404,
    ),
    # A job from before SFT data sets, naming a path: its retry is refused too.
    Bad(
        "retry a job that names a path", "post", "/api/jobs/{failed_job}/retry/", message=unknown_sft("/etc")
    ),
]


@pytest.fixture
def world(alice, base_version, preference_study, sft_folder, tmp_path):
    """The rows the requests name, the SFT data set ``squares`` beside a folder without
    metadata and a link out of the sets' folder, and a failed job that names a path."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "metadata.jsonl").write_text("")
    (sft_folder.parent / "escape").symlink_to(outside, target_is_directory=True)
    (sft_folder.parent / "empty").mkdir()
    failed = Job.objects.create(
        kind=Job.Kind.TRAINING,
        state=Job.State.FAILED,
        config={"options": {"method": "sft"}, "sft_data": "/etc", "version_name": ""},
        model_version=base_version,
        finished_at=Now(),
    )
    return {
        "version": base_version.pk,
        "prompt_set": preference_study.prompt_set_id,
        "study": preference_study.pk,
        "failed_job": failed.pk,
    }


def filled(value, world: dict):
    """``value`` with the fixture's ids in place of ``{version}`` and the like."""
    if isinstance(value, dict):
        return {key: filled(item, world) for key, item in value.items()}
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return world[value[1:-1]]
    return value


def database_state() -> dict:
    return {
        model.__name__: list(model.objects.order_by("pk").values()) for model in (Job, ModelVersion, Study)
    }


def files_under(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("bad", CASES, ids=lambda bad: bad.name)
def test_a_bad_launch_is_refused_and_leaves_nothing_behind(
    bad, world, alice, jobs_dir, media_root, broker_queue
):
    """The 4xx with its message; no row, no queued message, no file."""
    client = client_for(alice)
    rows, files, media = database_state(), files_under(jobs_dir), files_under(media_root)
    response = getattr(client, bad.method)(bad.path.format(**world), filled(bad.body, world), format="json")
    assert response.status_code == bad.status, response.content
    if bad.message is not None:
        assert any(bad.message in text for text in said(response.json())), response.json()
    assert database_state() == rows
    assert files_under(jobs_dir) == files and files_under(media_root) == media
    assert queued(broker_queue) == []


def test_the_training_form_offers_the_sft_data_sets_by_name(client, alice, world, sft_folder):
    """The form lists the sets (not the folder without metadata, not the link out) and
    refuses a path like any name it does not list."""
    client.force_login(alice)
    page = client.get("/jobs/new/training/").content.decode()
    assert f'<option value="{SFT_SET}">{SFT_SET}</option>' in page
    assert 'value="escape"' not in page and 'value="empty"' not in page
    response = client.post(
        "/jobs/new/training/", {"base_version": world["version"], "sft_data": "/etc", "method": "sft"}
    )
    assert (
        response.status_code == 200
        and "/etc is not one of the available choices" in response.content.decode()
    )
    assert not Job.objects.exclude(pk=world["failed_job"]).exists()


def test_the_worker_refuses_sft_data_outside_the_sets(alice, as_worker, base_version, sft_folder):
    """A job whose configuration names a path (written before SFT data sets, or by hand)
    fails in the worker with the reason, without reading it."""
    job = Job.objects.create(
        kind=Job.Kind.TRAINING,
        config={
            "options": {"method": "sft", "max_steps": 1},
            "sft_data": str(sft_folder),
            "version_name": "",
        },
        model_version=base_version,
        progress_total=1,
        created_by=alice,
    )
    assert runner.job_run(job.pk) == Job.State.FAILED
    job.refresh_from_db()
    assert job.error == "JobRejected: " + unknown_sft(str(sft_folder))
    assert job.produced_version is None and not ModelVersion.objects.filter(parent=base_version).exists()
