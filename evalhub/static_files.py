"""How production stores static files: whitenoise's compressed, hashed copies, with the
imports between JavaScript modules rewritten to the hashed names too.

The labeling page is ES modules (``annotate/static/annotate/*.js``). Left as written,
``import … from "./loupe.js"`` in the hashed, forever-cached ``labeling.<hash>.js`` would
load the unhashed ``loupe.js``, which is cached for a minute only, so a browser could
pair a new page script with an old module after a release."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
