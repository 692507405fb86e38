"""What a run raises when its ``should_stop`` asks it to stop. No torch here: a worker that
also runs jobs of other kinds (imports, exports) catches it without loading torch."""


class RunCancelled(RuntimeError):
    """A training or a generation stopped on request (a cancel, or its job's end elsewhere)."""
