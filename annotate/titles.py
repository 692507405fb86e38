"""What annotators read about a study: its title and guidelines (SPEC "Blinding").

The researchers' name of a study often names the models it compares ("sd15-simpo vs
sd15-base"); annotators never see it. They see a title, neutral by default and made from
the study's kind and criteria, and the guidelines. Neither may contain the name of any
model version, whatever the case: every way a study is made or renamed goes through
``annotator_text_check``.
"""

from annotate import errors
from annotate.errors import InvalidInput
from annotate.models import Study
from evalhub.catalog.models import ModelVersion

CRITERION_WORDS = {"flaws": "visual flaws", "appeal": "visual appeal"}


def neutral_title(kind: str, criteria: list[str] | tuple[str, ...] = ()) -> str:
    """A title that says what the task is and nothing about where the images came from."""
    if kind == Study.Kind.AB:
        words = [CRITERION_WORDS[c] for c in CRITERION_WORDS if c in criteria]
        return "Compare two images: " + " and ".join(words)
    if kind == Study.Kind.BEST_WORST:
        return "Pick the best and the worst of five images"
    return "Answer questions about an image"


def annotator_text_check(**texts: str) -> None:
    """Refuse an annotator-facing text (``title=…``, ``guidelines=…``) that contains a model
    version's name, case-insensitively."""
    names = list(ModelVersion.objects.values_list("name", flat=True))
    for field, text in texts.items():
        folded = text.casefold()
        named = sorted(name for name in names if name.strip() and name.casefold() in folded)
        if named:
            raise InvalidInput(errors.NAMES_A_MODEL.format(field=field, model=named[0]))
