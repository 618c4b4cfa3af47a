"""Errors about data: a failed load (with the option that would fix it) and data that cannot train.

They sit above the packages: data raises them on load, preferences and train on pairs and runs.
"""

from __future__ import annotations


class DatasetLoadError(ValueError):
    """Data could not be loaded; the message names the file, line or row and what to do.

    `option` and `choices` name the load option that resolves the problem (for example
    `instances` with `["expand", "first"]`), so a view can offer it as a dropdown.
    """

    def __init__(self, message: str, *, option: str | None = None, choices: list | None = None):
        super().__init__(message)
        self.option = option
        self.choices = list(choices or [])


class RowError(ValueError):
    """One row of a block cannot be converted; the loader turns it into a DatasetLoadError."""

    def __init__(self, index: int, message: str, option: str | None = None, choices=None):
        super().__init__(message)
        self.index = index
        self.option = option
        self.choices = list(choices or [])


class TrainingDataError(ValueError):
    """The data cannot train: no rows, no trainable tokens, unusable preference pairs; the message
    says what to change."""
