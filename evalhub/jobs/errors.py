"""Errors the jobs app reports: a launch, cancel, retry or comparison refused, with the
message forms, the API and the job page show. Tests reuse the constants."""

UNKNOWN_OPTIONS = "unknown {kind} option(s): {names}"
STUDY_OR_FOLDER = "give either a best/worst study or an SFT data set"
NOT_BEST_WORST = "study {study!r} is not a best/worst-of-five study"
NO_DECIDED_PAIRS = (
    "study {study!r} has no decided winner/loser pair yet: {incomplete} of {tasks} tasks still lack "
    "their {overlap} judgments"
)
FOLDER_TRAINS_SFT_ONLY = "an SFT data set trains SFT only; preference methods need a best/worst study"
UNKNOWN_SFT_DATA = (
    "no SFT data set named {name!r}: SFT data is named, never given as a path; the sets are the "
    "folders under EVALHUB_JOBS_DIR/{folder} that hold a metadata.jsonl ({names})"
)
NO_WEIGHTS = "model version {version} has no weights folder (weights_uri is empty)"
VERSION_NAME_TAKEN = "a model version named {name!r} already exists"
VERSION_NAME_PROMISED = "job #{job} ({state}) will register a version named {name!r}; choose another name"
NO_PARENT = "model version {version} has no parent to compare with"
NO_PROMPTS = "prompt set {prompt_set!r} has no prompts"
ALREADY_ENDED = "job #{job} has already ended ({state})"
NOT_RETRYABLE = "only a failed or cancelled job can be retried; job #{job} is {state}"
BROKER_UNREACHABLE = (
    "the job could not be queued: the broker at CELERY_BROKER_URL did not take it ({error}); "
    "retry it once the broker runs"
)


class JobRejected(ValueError):
    """A job action refused; the message says why."""
