"""Errors the annotation engine reports. Each carries the HTTP status the API answers
with; the messages are constants the tests reuse."""


class AnnotationError(Exception):
    status = 400

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class InvalidInput(AnnotationError):
    status = 400


class NotFound(AnnotationError):
    status = 404


class Conflict(AnnotationError):
    status = 409


class Forbidden(AnnotationError):
    status = 403


# Study set-up
STUDY_NAME_TAKEN = "a study named {name!r} already exists"
WRONG_MODEL_COUNT = "a {kind} study needs {expected}, got {got}"
SAME_MODEL_TWICE = "an A/B study compares two different model versions"
NO_CRITERIA = "choose at least one criterion: flaws, appeal"
UNKNOWN_CRITERION = "unknown criterion {criterion!r}; expected flaws or appeal"
OVERLAP_RANGE = "overlap must be between 1 and 50, got {overlap}"
LEASE_RANGE = "lease_seconds must be between 30 and 3600, got {seconds}"
MISSING_IMAGES = "{count} prompt(s) lack {what} from {model!r}: {examples}"
NO_TASKS = "the study would have no tasks: {reason}"
OVERLAP_LOCKED = "overlap cannot change once the study has judgments"
UNKNOWN_TASK_KEY = "no task {key!r} in this study"
NAMES_A_MODEL = "the {field} is shown to annotators and must not name a model: it contains {model!r}"
TITLE_EMPTY = "the title shown to annotators cannot be empty"
EXPOSURE_NOT_AB = "exposure is a setting of A/B studies; {kind} studies always reveal their images"
UNKNOWN_EXPOSURE = "exposure must be isolated or shared, got {exposure!r}"
AB_SIZES_DIFFER = (
    "the two models' images differ in size, which tells the sides apart: {examples}; "
    "generate them at one size, or choose a display size to serve both resampled to it"
)
DISPLAY_SIZE_FORMAT = "display size must be WIDTHxHEIGHT, each from {low} to {high} pixels, got {value!r}"
DISPLAY_SIZE_NOT_AB = "a display size applies to A/B studies only"
NAME_EMPTY = "the study needs a name"
TOO_LONG = "the {setting} must be at most {max_length} characters"
NOT_ONE_OF = "{setting} must be one of {choices}, got {value!r}"
IMAGE_INDEX_RANGE = "image_index must be from 0 to 2147483647, got {index}"
WRONG_TYPE = "{setting} must be {expected}, got {value!r}"
SETTING_RANGE = "{setting} must be from {low} to {high}, got {value}"

# Assignment and submission
STUDY_PAUSED = "this study is paused; try again later"
STUDY_CLOSED = "this study is closed"
UNKNOWN_ASSIGNMENT = "no such assignment for you"
UNKNOWN_STUDY = "no such study"
ALREADY_ANSWERED = "you already answered this task"
TASK_SKIPPED = "you skipped this task"
# A live lease keeps its slot, so a task fills up under it only by other means (an import of
# judgments, a smaller overlap); a lease that expired gave its slot back to the pool.
TASK_FULL = "this task already has all the answers it needs"
LEASE_LOST = "your lease expired and the task went to someone else"
CLIENT_ID_REUSED = "this client_id was already used for another task"
NO_IMAGE_AT = "no image at position {position}"
EXCLUDED = "you no longer take part in this study; thank you for your work"
NOT_ENROLLED = "this study is open to invited annotators only"
QUIZ_FAILED = "Thank you for your time: this study needs a qualification you did not reach."

# Workforce (annotate.workforce)
NOT_IN_STUDY = "{annotator!r} has no part in this study"
ALREADY_EXCLUDED = "{annotator!r} is already excluded from this study"
NOT_EXCLUDED = "{annotator!r} is not excluded from this study"
REASON_EMPTY = "say why: the reason is kept with the exclusion"

# Invitations and enrollment (annotate.enrollment)
INVITATION_NO_STUDY = "choose at least one study for the invitation"
INVITATION_EXPIRY_RANGE = "an invitation lasts from 1 to 365 days, got {days}"
INVITATION_MAX_USES_RANGE = "the maximum number of uses must be from 1 to 100000, got {uses}"
INVITATION_BAD_DOMAIN = "the e-mail domain must look like example.org, got {domain!r}"
INVITATION_REVOKED = "this invitation was withdrawn"
INVITATION_EXPIRED = "this invitation has expired"
INVITATION_USED_UP = "this invitation has been used as many times as it allows"
INVITATION_ALREADY_REVOKED = "this invitation was already withdrawn"
INVITATION_FOR_ANNOTATORS = "this invitation is for annotators; you are logged in with another role"
EMAIL_REQUIRED = "give your e-mail address at {domain}"
EMAIL_WRONG_DOMAIN = "this invitation is for e-mail addresses at {domain}"
SIGNUPS_THROTTLED = "too many sign-ups from your network; try again in an hour"
NOT_ENROLLED_IN = "{annotator!r} is not enrolled in this study"

# Crowd participants (annotate.crowd)
CROWD_NOT_ACCEPTED = "this study does not take participants from a crowd platform"
CROWD_BAD_ID = "the participant id must be 1 to 64 letters, digits, '-' or '_'; check the link you followed"
CROWD_ALREADY_TOOK_PART = "you have already taken part in this study; thank you"
CROWD_EXCLUDED = "you no longer take part in this study; thank you for your time"
BAD_URL = "{setting} must be an http:// or https:// address, got {value!r}"
BAD_CODE = "{setting} must be 1 to 64 letters, digits, '-' or '_', got {value!r}"

# Answers
ANSWER_NOT_OBJECT = "the answer must be a JSON object"
ANSWER_FIELDS = "a {kind} answer has the fields {fields}"
BAD_POSITION = "{field} must be an image position from 0 to {last}"
SAME_POSITIVE_NEGATIVE = "the positive and the negative must be different images"
BAD_CHOICE = "choice must be one of {choices}"
MISSING_QUESTIONS = "answer every question: missing {ids}"
UNKNOWN_QUESTIONS = "unknown question id(s) {ids}"
BAD_YES_NO = "answer {question} with yes or no"
ON_SCREEN_OVER_SHOWN = "must not exceed shown_for_ms: the time on screen is part of the time shown"
