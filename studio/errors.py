"""Errors a user can meet. Each message is a whole sentence a non-programmer understands.

The UI turns them into `gr.Warning`/`gr.Error`, the CLI into a non-zero exit with the sentence on stderr.
"""


class StudioError(Exception):
    """Base class: the message is shown to the user as is.

    Attributes:
        details: More for whoever wants it (folder paths, what to do without internet), shown behind "Details" in
            the app and on the line after the sentence on the command line; empty for most errors.
    """

    def __init__(self, message: str = "", details: str = "") -> None:
        super().__init__(message)
        self.details = details


class ModelUnavailableError(StudioError):
    """The model is neither on this machine nor downloadable right now."""


class BadImageError(StudioError):
    """The image cannot be read, is empty, or is too large."""


class BadLabelsError(StudioError):
    """The labels typed cannot be classified against."""


class BadTemplateError(StudioError):
    """A prompt template without a place for the label."""


class ExportError(StudioError):
    """Exporting a model to ONNX failed or its result disagreed with PyTorch."""


class CorruptExportError(StudioError):
    """An exported graph no longer matches its manifest (changed or damaged on disk)."""


class ClassifierError(StudioError):
    """A custom classifier cannot be made, trained, saved or loaded as asked (names, examples, files)."""


class CorruptClassifierError(ClassifierError):
    """A saved classifier's files no longer match the checksums written when it was saved."""


class ServingError(StudioError):
    """Ray Serve cannot be reached, a task's service cannot start there, or it is restarting."""
