"""lora-nb's exception types.

Every error a user can cause is one of these: one clear sentence that says what
is wrong, followed by the fix. Widgets show ``str(error)`` as is; the CLI prints
it without a traceback.

>>> from lora_nb.errors import InvalidName
>>> str(InvalidName("'../x' is not a valid dataset name.", fix="Use letters, digits, '-', '_' or '.'."))
"'../x' is not a valid dataset name. Use letters, digits, '-', '_' or '.'."
"""
from __future__ import annotations


class LoraNbError(Exception):
    """Base of every error lora-nb raises on purpose.

    ``message`` says what went wrong, ``fix`` says what to do about it.
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message.strip()
        self.fix = fix.strip() if fix else None
        super().__init__(self.message if not self.fix else f"{self.message} {self.fix}")


class InvalidName(LoraNbError, ValueError):
    """A user-supplied name or relative path is not acceptable (it would escape the workspace, ...)."""


class NotFound(LoraNbError, LookupError):
    """A named thing (dataset, job, preset, model, image) does not exist."""


class AlreadyExists(LoraNbError):
    """Something with that name exists already."""


class InvalidInput(LoraNbError, ValueError):
    """Input data (an archive, an image, a file) is broken or hostile."""


class ConfigError(LoraNbError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DatasetBlocked(ConfigError):
    """A training run was refused because its dataset has findings that would make it fail
    (``findings``: the :class:`lora_nb.datasets.doctor.Finding` list; ``ds.fix(finding)`` repairs those that can be)."""

    def __init__(self, message: str, fix: str | None = None, findings: list | None = None) -> None:
        super().__init__(message, fix)
        self.findings = list(findings or [])


class EngineError(LoraNbError):
    """A training engine is missing, misconfigured or failed to start."""


class JobError(LoraNbError):
    """A job could not be submitted, stopped or followed."""


class ClusterError(JobError):
    """A Ray cluster (the executor of a workspace) is unreachable, not installed, or refused a job."""


class StoreError(LoraNbError):
    """The workspace database is unusable (newer schema, corrupt file, locked too long)."""


class NetworkError(LoraNbError):
    """A download or upload failed."""


class SecretError(LoraNbError, ValueError):
    """A secret (token) was about to be written where secrets must never go."""


class TaggerError(LoraNbError):
    """A tagger model is missing, not cached while offline, or not a WD14-style model."""


class LoraFileError(LoraNbError, ValueError):
    """A LoRA or model file is unreadable, truncated, hostile, or not what it claims to be."""
