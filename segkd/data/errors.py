"""One exception type for bad dataset input, so a run fails with a single line that names the fix."""


class DatasetError(ValueError):
    """The data on disk is not what the loader expects (missing, mislaid, corrupt or foreign)."""
