"""A study's settings, each declared once (STYLE 12): type, bounds or choices, default,
help, and the kinds of study it applies to.

The researcher's form (annotate.forms), the API's input serializers (annotate.api) and the
options of ``create_study`` are built from these declarations, and the service checks
every study it creates or changes with ``study_settings_clean``. So every path accepts and
refuses the same values, with the same messages (annotate.errors). A study's prompt set
and model versions are not settings: each path names them its own way.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from annotate import errors
from annotate.errors import InvalidInput
from annotate.models import Study, Task

REQUIRED = object()  # the default of a setting that must be given
ALL_KINDS = tuple(Study.Kind.values)
SIDE_RANGE = (8, 4096)  # a display size's width and height, in pixels


@dataclass(frozen=True)
class Setting:
    """One setting of a study.

    ``type`` is int, bool, str, or list (a list of ``choices``). ``invalid(value)`` words
    the refusal of a value out of bounds, out of the choices or (with a ``pattern``)
    malformed; settings checked by their type alone have none. An empty value ("" or [])
    stands for the default where ``blank``, and is refused otherwise, in the words of
    ``empty`` if set. On a change to an existing study ``empty`` refuses it even where
    ``blank``: a title is made from the kind only at creation. In a study of a kind
    outside ``kinds`` the setting is ignored, or refused with ``elsewhere`` if set.
    """

    name: str
    type: type
    help: str
    invalid: Callable[[Any], str] | None = None
    default: Any = REQUIRED
    label: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    low: int | None = None
    high: int | None = None
    max_length: int | None = None
    pattern: re.Pattern | None = None  # a text of whole numbers, each from low to high
    matches: re.Pattern | None = None  # a text that must match whole (a URL, a code)
    blank: bool = False
    empty: str = ""
    kinds: tuple[str, ...] = ALL_KINDS
    elsewhere: str = ""
    at_creation: bool = True
    changeable: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def values(self) -> list[str]:
        return [value for value, _ in self.choices]

    @property
    def too_long(self) -> str:
        return errors.TOO_LONG.format(setting=self.name, max_length=self.max_length)

    def check(self, value: Any) -> Any:
        """The value checked against the declaration, whatever the kind: text stripped, a
        list without repeats, a ``pattern`` as its tuple of numbers (None for empty)."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise InvalidInput(
                    errors.WRONG_TYPE.format(setting=self.name, expected="true or false", value=value)
                )
            return value
        if self.type is int:
            if not isinstance(value, int) or isinstance(value, bool) or not self._within(value):
                raise InvalidInput(self.invalid(value))
            return value
        if self.type is list:
            if isinstance(value, str) or not isinstance(value, list | tuple):
                raise InvalidInput(
                    errors.WRONG_TYPE.format(setting=self.name, expected="a list", value=value)
                )
            for item in value:
                self._choose(item)
            return list(dict.fromkeys(value))
        if not isinstance(value, str):
            raise InvalidInput(errors.WRONG_TYPE.format(setting=self.name, expected="a text", value=value))
        text = value.strip()
        if self.max_length is not None and len(text) > self.max_length:
            raise InvalidInput(self.too_long)
        if self.choices and text:
            self._choose(text)
        if self.matches is not None and text and not self.matches.fullmatch(text):
            raise InvalidInput(self.invalid(value))
        if self.pattern is not None:
            return self._numbers(value, text) if text else None
        return text

    def validate(self, value: Any) -> None:
        """``check`` as a Django validator, for the form's and the serializers' fields."""
        try:
            self.check(value)
        except InvalidInput as exc:
            raise ValidationError(exc.message) from None

    def _within(self, number: int) -> bool:
        return (self.low is None or number >= self.low) and (self.high is None or number <= self.high)

    def _choose(self, value: Any) -> None:
        if value not in self.values:
            raise InvalidInput(self.invalid(value))

    def _numbers(self, value: str, text: str) -> tuple[int, ...]:
        match = self.pattern.fullmatch(text)
        if match is None or not all(self._within(int(number)) for number in match.groups()):
            raise InvalidInput(self.invalid(value))
        return tuple(int(number) for number in match.groups())

    def applies_to(self, kind: str) -> bool:
        return kind in self.kinds


NAME = Setting(
    "name",
    str,
    "The researchers' name; annotators never see it.",
    max_length=200,
    empty=errors.NAME_EMPTY,
    changeable=True,
)
TITLE = Setting(
    "title",
    str,
    "What annotators see; leave empty for a neutral title from the kind and criteria. "
    "It must not name a model version.",
    default="",
    label="Title for annotators",
    max_length=200,
    blank=True,
    empty=errors.TITLE_EMPTY,
    changeable=True,
)
KIND = Setting(
    "kind",
    str,
    "What a task is: the best and the worst of five images, an A/B comparison, or "
    "questions about one image (text alignment).",
    invalid=lambda value: errors.NOT_ONE_OF.format(
        setting="kind", choices=", ".join(Study.Kind.values), value=value
    ),
    choices=tuple(Study.Kind.choices),
)
CRITERIA = Setting(
    "criteria",
    list,
    "A/B only: what each pair is judged on, one task per criterion.",
    invalid=lambda value: errors.UNKNOWN_CRITERION.format(criterion=value),
    default=[Task.Criterion.FLAWS.value, Task.Criterion.APPEAL.value],
    choices=tuple(Task.Criterion.choices),
    empty=errors.NO_CRITERIA,
    kinds=(Study.Kind.AB,),
)
OVERLAP = Setting(
    "overlap",
    int,
    "Annotators per task (N); it can change until the first judgment.",
    invalid=lambda value: errors.OVERLAP_RANGE.format(overlap=value),
    default=5,
    low=1,
    high=50,
    changeable=True,
)
LEASE_SECONDS = Setting(
    "lease_seconds",
    int,
    "How long a task stays with an annotator without a heartbeat, in seconds.",
    invalid=lambda value: errors.LEASE_RANGE.format(seconds=value),
    default=300,
    low=30,
    high=3600,
    changeable=True,
)
IMAGE_INDEX = Setting(
    "image_index",
    int,
    "A/B and alignment: which of a prompt's images is shown, by index.",
    invalid=lambda value: errors.IMAGE_INDEX_RANGE.format(index=value),
    default=0,
    low=0,
    high=2**31 - 1,  # GeneratedImage.index is a PositiveIntegerField
    kinds=(Study.Kind.AB, Study.Kind.ALIGNMENT),
)
GUIDELINES = Setting(
    "guidelines",
    str,
    "What annotators read before they start; leave empty for the default guidelines of "
    "the kind. They must not name a model version.",
    default="",
    blank=True,
    changeable=True,
)
SKIP_INCOMPLETE = Setting(
    "skip_incomplete",
    bool,
    "Leave out prompts without the images a task needs, instead of refusing the study.",
    default=False,
)
EXPOSURE = Setting(
    "exposure",
    str,
    "A/B only. isolated (the default): nobody judges an image blind that they saw with "
    "its prompt or in a one-model study, nor the reverse (needs a larger annotator pool). "
    "shared: no such rule. See docs/researchers.md.",
    invalid=lambda value: errors.UNKNOWN_EXPOSURE.format(exposure=value),
    default=Study.Exposure.ISOLATED.value,
    choices=tuple(Study.Exposure.choices),
    blank=True,
    kinds=(Study.Kind.AB,),
    elsewhere=errors.EXPOSURE_NOT_AB,
)
DISPLAY_SIZE = Setting(
    "display_size",
    str,
    "A/B only, as WIDTHxHEIGHT: serve both models' images resampled to this size "
    "(needed when their sizes differ).",
    invalid=lambda value: errors.DISPLAY_SIZE_FORMAT.format(
        low=SIDE_RANGE[0], high=SIDE_RANGE[1], value=value
    ),
    default=None,
    low=SIDE_RANGE[0],
    high=SIDE_RANGE[1],
    pattern=re.compile(r"(\d{1,5})\s*[x×]\s*(\d{1,5})"),
    blank=True,
    kinds=(Study.Kind.AB,),
    elsewhere=errors.DISPLAY_SIZE_NOT_AB,
)


def _ranged(name: str, help: str, default: int, low: int, high: int, label: str = "") -> Setting:
    """A whole-number setting of the quality rule or the crowd quota, changeable while the
    study runs."""
    return Setting(
        name,
        int,
        help,
        invalid=lambda value: errors.SETTING_RANGE.format(setting=name, low=low, high=high, value=value),
        default=default,
        label=label,
        low=low,
        high=high,
        changeable=True,
    )


# The quality rule (annotate.workforce), kept in Study.config["quality"]. Gold items are
# the study's tasks with a known answer (task_set_gold); answering them like any other
# task, an annotator shows whether they are paying attention.
QUALITY_ACTION = Setting(
    "quality_action",
    str,
    "When an annotator's accuracy on gold items falls below the threshold: exclude them "
    "(their judgments leave the tables and the tasks they answered reopen, so each still "
    "reaches N), flag them on the workforce page for a researcher to decide, or off.",
    invalid=lambda value: errors.NOT_ONE_OF.format(
        setting="quality_action", choices="exclude, flag, off", value=value
    ),
    default="flag",
    label="Quality rule",
    choices=(("exclude", "Exclude automatically"), ("flag", "Flag for review"), ("off", "Off")),
    blank=True,
    empty=errors.NOT_ONE_OF.format(setting="quality_action", choices="exclude, flag, off", value=""),
    changeable=True,
)
QUALITY_MIN_GOLD = _ranged(
    "quality_min_gold",
    "Gold answers an annotator gives before the rule judges their accuracy (m).",
    default=5,
    low=1,
    high=1000,
    label="Gold answers before judging",
)
QUALITY_GOLD_ACCURACY = _ranged(
    "quality_gold_accuracy",
    "The lowest accuracy on gold items, in percent, that the rule accepts.",
    default=70,
    low=0,
    high=100,
    label="Lowest gold accuracy (%)",
)
QUALITY_FLOOR_SECONDS = _ranged(
    "quality_floor_seconds",
    "Flag annotators whose median time on screen per task is below this many seconds "
    "(0: never). Flags are shown to researchers; they exclude nobody by themselves.",
    default=2,
    low=0,
    high=600,
    label="Fastest plausible median (s)",
)
# The qualification quiz and gold items mixed into the queue (annotate.assignment).
QUIZ_SIZE = _ranged(
    "quiz_size",
    "Gold items each annotator answers first, as a qualification quiz, before any real task "
    "(0: no quiz). Those below the pass mark get no real task.",
    default=0,
    low=0,
    high=50,
    label="Qualification quiz (gold items)",
)
QUIZ_PASS_PERCENT = _ranged(
    "quiz_pass_percent",
    "The share of the quiz's gold items, in percent, answered right to pass it.",
    default=80,
    low=0,
    high=100,
    label="Quiz pass mark (%)",
)
GOLD_RATE_PERCENT = _ranged(
    "gold_rate_percent",
    "After the quiz, the share of each annotator's tasks, in percent, that are gold items, "
    "answered by everyone served them (0: gold items are served like any task).",
    default=0,
    low=0,
    high=50,
    label="Gold items in the queue (%)",
)
QUALITY = (
    QUALITY_ACTION,
    QUALITY_MIN_GOLD,
    QUALITY_GOLD_ACCURACY,
    QUALITY_FLOOR_SECONDS,
    QUIZ_SIZE,
    QUIZ_PASS_PERCENT,
    GOLD_RATE_PERCENT,
)

# Participants from a crowd platform (annotate.crowd), kept in Study.config["crowd"].
CROWD_ENABLED = Setting(
    "crowd_enabled",
    bool,
    "Take participants from a crowd platform (Prolific, MTurk) at the study's crowd link: "
    "each gets a passwordless account bound to their participant id.",
    default=False,
    label="Crowd participants",
    changeable=True,
)
CROWD_QUOTA_TASKS = _ranged(
    "crowd_quota_tasks",
    "Tasks a crowd participant answers before they get the completion code (0: no task quota).",
    default=0,
    low=0,
    high=100_000,
    label="Tasks per participant",
)
CROWD_QUOTA_MINUTES = _ranged(
    "crowd_quota_minutes",
    "Minutes from a crowd participant's arrival after which they get no new task and the "
    "completion code (0: no time quota).",
    default=0,
    low=0,
    high=24 * 60,
    label="Minutes per participant",
)
CROWD_COMPLETION_URL = Setting(
    "crowd_completion_url",
    str,
    "Where a crowd participant goes once done: the platform's completion link "
    "(http:// or https://); empty: the completion code alone is shown.",
    invalid=lambda value: errors.BAD_URL.format(setting="crowd_completion_url", value=value),
    default="",
    label="Completion URL",
    max_length=500,
    matches=re.compile(r"https?://[^\s/?#]+[^\s]*"),
    blank=True,
    changeable=True,
)
CROWD_COMPLETION_CODE = Setting(
    "crowd_completion_code",
    str,
    "The code shown to crowd participants once done, for the platform's approval; "
    "empty: a random code, made once and kept.",
    invalid=lambda value: errors.BAD_CODE.format(setting="crowd_completion_code", value=value),
    default="",
    label="Completion code",
    max_length=64,
    matches=re.compile(r"[A-Za-z0-9_-]{1,64}"),
    blank=True,
    changeable=True,
)
CROWD = (
    CROWD_ENABLED,
    CROWD_QUOTA_TASKS,
    CROWD_QUOTA_MINUTES,
    CROWD_COMPLETION_URL,
    CROWD_COMPLETION_CODE,
)
# The settings kept together in Study.config, by their key there.
CONFIG_GROUPS = {"quality": QUALITY, "crowd": CROWD}

ACCESS = Setting(
    "access",
    str,
    "Who may work on the study: every annotator (open), or only those enrolled in it, "
    "through an invitation link or by a researcher (enrolled).",
    invalid=lambda value: errors.NOT_ONE_OF.format(
        setting="access", choices=", ".join(Study.Access.values), value=value
    ),
    default=Study.Access.OPEN.value,
    label="Open to",
    choices=tuple(Study.Access.choices),
    blank=True,
    empty=errors.NOT_ONE_OF.format(setting="access", choices=", ".join(Study.Access.values), value=""),
    changeable=True,
)

STATUS = Setting(
    "status",
    str,
    "open; paused: no new tasks, answers in flight are kept; closed.",
    invalid=lambda value: errors.NOT_ONE_OF.format(
        setting="status", choices=", ".join(Study.Status.values), value=value
    ),
    choices=tuple(Study.Status.choices),
    at_creation=False,
    changeable=True,
)
SETTINGS = (
    NAME,
    TITLE,
    KIND,
    CRITERIA,
    OVERLAP,
    LEASE_SECONDS,
    IMAGE_INDEX,
    GUIDELINES,
    SKIP_INCOMPLETE,
    EXPOSURE,
    DISPLAY_SIZE,
    *QUALITY,
    *CROWD,
    ACCESS,
    STATUS,
)
AT_CREATION = tuple(setting for setting in SETTINGS if setting.at_creation)
CHANGEABLE = tuple(setting for setting in SETTINGS if setting.changeable)


def config_group(study: Study, group: str) -> dict[str, Any]:
    """A group of settings kept in the study's config (CONFIG_GROUPS): the stored values,
    the declared defaults where a study made before the group existed has none."""
    stored = study.config.get(group, {})
    return {setting.name: stored.get(setting.name, setting.default) for setting in CONFIG_GROUPS[group]}


def study_settings_clean(values: dict[str, Any], *, kind: str | None = None) -> dict[str, Any]:
    """Check a study's settings (name → value; None: not given) against their declarations
    and return them checked.

    Without ``kind``, a new study's: every setting at creation, the defaults filled in for
    those not given, ``kind`` among them. With the ``kind`` of an existing study, changes:
    changeable settings only, those given. Raises InvalidInput with the message users see.
    """
    creating = kind is None
    settings = AT_CREATION if creating else CHANGEABLE
    unknown = set(values) - {setting.name for setting in settings}
    if unknown:
        raise TypeError(
            f"not a setting {'at creation' if creating else 'that can change'}: {sorted(unknown)}"
        )
    if creating:
        kind = _value(KIND, values.get("kind"), kind="", creating=True)
    cleaned = {}
    for setting in settings:
        if creating or values.get(setting.name) is not None:
            cleaned[setting.name] = _value(setting, values.get(setting.name), kind=kind, creating=creating)
    return cleaned


def _value(setting: Setting, value: Any, *, kind: str, creating: bool) -> Any:
    """A setting's value in a study of this kind ("": any kind): the value given, checked,
    or the default it stands for."""
    applies = not kind or setting.applies_to(kind)
    if value is not None:
        value = setting.check(value)
        if value not in ("", [], None):
            if not applies and setting.elsewhere:
                raise InvalidInput(setting.elsewhere.format(kind=Study.Kind(kind).label))
            return value
        if applies and not (setting.blank and (creating or not setting.empty)):
            raise InvalidInput(setting.empty or setting.invalid(value))
    return _default(setting, applies)


def _default(setting: Setting, applies: bool) -> Any:
    """The value of a setting not given, or given empty: its default, but None where the
    kind refuses the setting."""
    if setting.required:
        raise InvalidInput(setting.empty or setting.invalid(None))
    if setting.default is None or not applies and setting.elsewhere:
        return None
    return setting.check(setting.default)
