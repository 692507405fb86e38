"""No models of its own: roles are auth groups (``roles.py``).

The module exists because Django sends ``post_migrate`` only to apps with a models
module, and that signal is what keeps the role groups in sync (``apps.py``).
"""
