"""Push an export folder to the Hugging Face Hub (huggingface_hub), private unless asked.

Offline, not logged in, or the Hub out of reach: a clear message and nothing lost; the export
stays where it is and can be pushed again later.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import ExportError

RECORD_FILE = "export.json"
OFFLINE_VALUES = ("1", "ON", "YES", "TRUE")


def push_to_hub(folder: str | os.PathLike, repo_id: str, private: bool = True) -> str:
    """Upload the export in `folder` to the model repo `repo_id` (created if new); its URL.

    Raises ExportError when `folder` is not an export, when offline or not logged in, when
    `private` is asked of a repo that exists and is public (the Hub keeps an existing repo's
    visibility), or when the Hub cannot be reached or refuses; the folder is never changed.
    """
    folder = Path(folder).expanduser().resolve()
    if not (folder / RECORD_FILE).is_file():
        raise ExportError(
            f"{folder} is not a workbench export (no {RECORD_FILE}); export a model with "
            "session.export_model(...) first and push its folder."
        )
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ExportError(f"repo_id is 'owner/name'; got {repo_id!r}.")
    if _offline():
        raise ExportError(
            "The Hugging Face Hub is switched off here (HF_HUB_OFFLINE is set); nothing was "
            f"uploaded and {folder} is unchanged. Push again from a machine that is online."
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import LocalTokenNotFoundError, OfflineModeIsEnabled

    api = HfApi()
    try:
        api.whoami()
    except (LocalTokenNotFoundError, OfflineModeIsEnabled) as e:
        raise ExportError(_not_logged_in(folder, e)) from e
    except Exception as e:  # a 401 or no network: both leave the export untouched
        raise ExportError(_unreachable(folder, e)) from e
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        public = not api.repo_info(repo_id).private
    except Exception as e:
        raise ExportError(_unreachable(folder, e)) from e
    if private and public:  # create_repo leaves an existing repo as it is
        raise ExportError(
            f"{repo_id} already exists and is public, and private=True would not change that: "
            "nothing was uploaded. Make it private on the Hub (its Settings) and push again, or "
            "push with private=False to publish there."
        )
    try:
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            commit_message=f"Upload {folder.name} from the tuning workbench",
        )
    except Exception as e:
        raise ExportError(_unreachable(folder, e)) from e
    return str(url)


def _offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").upper() in OFFLINE_VALUES
    return env or bool(constants.HF_HUB_OFFLINE)


def _not_logged_in(folder: Path, error: Exception) -> str:
    return (
        f"Not logged in to the Hugging Face Hub ({type(error).__name__}); run `hf auth login` "
        f"(or set HF_TOKEN) and push again. Nothing was uploaded; {folder} is unchanged."
    )


def _unreachable(folder: Path, error: Exception) -> str:
    return (
        f"The Hub refused or could not be reached ({type(error).__name__}: "
        f"{str(error).splitlines()[0][:200] if str(error) else ''}). Check the login "
        f"(`hf auth whoami`) and the network, then push again; {folder} is unchanged."
    )
