"""Prefect flows: they wire stages together and own all file I/O of a run."""
