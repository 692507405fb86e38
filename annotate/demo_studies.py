"""The demo's open studies, one per task kind, over the demo prompt set (``make demo``)."""

from annotate.models import Study
from annotate.services import study_create
from evalhub.catalog.demo_seed import DEMO_PROMPT_SET
from evalhub.catalog.models import ModelVersion, PromptSet

DEMO_STUDIES = (
    ("Demo: best/worst of five (demo-base)", Study.Kind.BEST_WORST, ["demo-base"]),
    ("Demo: A/B demo-sft vs demo-base", Study.Kind.AB, ["demo-sft", "demo-base"]),
    ("Demo: text alignment", Study.Kind.ALIGNMENT, ["demo-base", "demo-sft"]),
)


def demo_studies_seed() -> list[str]:
    """Create the demo studies that do not exist yet; returns the names created."""
    prompt_set = PromptSet.objects.get(name=DEMO_PROMPT_SET)
    created = []
    for name, kind, model_names in DEMO_STUDIES:
        if Study.objects.filter(name=name).exists():
            continue
        models = [ModelVersion.objects.get(name=model_name) for model_name in model_names]
        study_create(name=name, kind=kind, prompt_set=prompt_set, model_versions=models)
        created.append(name)
    return created
