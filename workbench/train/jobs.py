"""Job folders: a run packed to train on another machine, and the checks when it comes back.

A job folder is a run folder that has not run yet (config.json, template.json, data/) plus
job.json (which version wrote it), accelerate_config.yaml, launch.sh and an example
slurm.sbatch. It trains in place with `bash launch.sh` wherever tuning-workbench is installed;
a notebook follows it with Session.attach_run(folder), on shared storage or once copied back.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models import ModelSpec
from ..persist import atomic_write_json, atomic_write_text, read_json
from .config import ConfigError, TrainConfig
from .distributed import (
    ACCELERATE_CONFIG,
    DEFAULT_PORT,
    RUNNER_ENV_DEFAULTS,
    write_accelerate_config,
)
from .folder import RunFolder, RunInfo, RunStatus

if TYPE_CHECKING:
    from .run import Run

JOB_FORMAT = 1
JOB_FILE = "job.json"
BASE_ADAPTER = "base_adapter"


class JobFormatError(ValueError):
    """A job or run folder was written by an incompatible version; the message names both."""


def package_version() -> str:
    """This tuning-workbench's version."""
    import workbench

    return workbench.__version__


def export_job(run: Run, path: Path, model: str | None = None) -> Path:
    """Write `run` as a job folder at `path` (new or empty); see Run.export_job."""

    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} already exists and is not empty; export into a new folder.")
    info = run.info
    config = info.train
    if model is not None:
        info.model = ModelSpec(model)
    staging = path.parent / f".{path.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copytree(run.folder.data_dir, staging / "data")
    shutil.copy2(run.folder.template_file, staging / "template.json")
    if run.folder.probes_file.exists():  # the prompts answered at each evaluation
        shutil.copy2(run.folder.probes_file, staging / run.folder.probes_file.name)
    if config.base_adapter:  # DPO starts from an adapter: it travels with the job
        shutil.copytree(run.path / config.base_adapter, staging / BASE_ADAPTER)
        config = config.replace(base_adapter=BASE_ADAPTER)
    info.name, info.exported_from, info.train = path.name, run.name, config
    RunFolder(staging).write_info(info)
    write_accelerate_config(config, staging)
    write_scripts(staging, config, info.model.name_or_path, path.name)
    atomic_write_json(staging / JOB_FILE, job_record(config, info))
    RunFolder(staging).write_status(RunStatus("queued", max_steps=config.max_steps))
    if path.exists():
        path.rmdir()
    staging.rename(path)
    _warn_if_model_is_local(info.model.name_or_path, model)
    return path


def job_record(config: TrainConfig, info: RunInfo) -> dict[str, Any]:
    """job.json: which version wrote the job, and what it needs where it runs."""
    return {
        "format": JOB_FORMAT,
        "package": "tuning-workbench",
        "package_version": package_version(),
        "created": time.time(),
        "exported_from": info.exported_from,
        "model": info.model.to_json(),
        "num_processes": config.num_processes,
        "num_machines": config.num_machines,
        "command": "bash launch.sh",
    }


def write_scripts(folder: Path, config: TrainConfig, model: str, name: str) -> None:
    """launch.sh (runs the job here) and slurm.sbatch (an example for a Slurm cluster)."""
    version = package_version()
    header = (
        "#!/usr/bin/env bash\n"
        f"# Needs tuning-workbench {version} (pip install 'tuning-workbench=={version}') and the\n"
        f"# base model {model!r}. Follow the run from a notebook: session.attach_run('<this folder>').\n"
    )
    if config.distributed:
        run_line = (
            'MACHINE_RANK="${MACHINE_RANK:-0}"\n'
            'MAIN_PROCESS_IP="${MAIN_PROCESS_IP:-127.0.0.1}"\n'
            f'MAIN_PROCESS_PORT="${{MAIN_PROCESS_PORT:-{DEFAULT_PORT}}}"\n'
            'LOG=runner.log; [ "$MACHINE_RANK" = 0 ] || LOG="runner-machine-$MACHINE_RANK.log"\n'
            f"accelerate launch --config_file {ACCELERATE_CONFIG} \\\n"
            '  --machine_rank "$MACHINE_RANK" --main_process_ip "$MAIN_PROCESS_IP" \\\n'
            '  --main_process_port "$MAIN_PROCESS_PORT" \\\n'
            '  -m workbench.train . 2>&1 | tee -a "$LOG"\n'
        )
        usage = "# On each machine: MACHINE_RANK=<0..> MAIN_PROCESS_IP=<machine 0> bash launch.sh\n"
    else:
        run_line = '"${PYTHON:-python}" -m workbench.train . 2>&1 | tee -a runner.log\n'
        usage = "# Run: bash launch.sh   (PYTHON=<interpreter> to choose the Python)\n"
    launch = folder / "launch.sh"
    defaults = "".join(f'export {k}="${{{k}:-{v}}}"\n' for k, v in RUNNER_ENV_DEFAULTS.items())
    atomic_write_text(
        launch, header + usage + 'set -euo pipefail\ncd "$(dirname "$0")"\n' + defaults + run_line
    )
    launch.chmod(0o755)
    atomic_write_text(folder / "slurm.sbatch", slurm_script(config, name))


def slurm_script(config: TrainConfig, name: str) -> str:
    """An example Slurm batch script: one launcher per machine, each starting its processes."""
    per_machine = config.num_processes // config.num_machines
    return (
        "#!/usr/bin/env bash\n"
        f"#SBATCH --job-name={name}\n"
        f"#SBATCH --nodes={config.num_machines}\n"
        "#SBATCH --ntasks-per-node=1   # one launcher per machine; it starts the processes\n"
        f"#SBATCH --gpus-per-node={per_machine}\n"
        "#SBATCH --time=04:00:00\n"
        "#SBATCH --output=slurm-%j.out\n"
        "# An example: set the partition, account, time and environment for your cluster,\n"
        "# then submit from this folder: sbatch slurm.sbatch\n"
        "set -euo pipefail\n"
        "# source /path/to/venv/bin/activate   # an environment with tuning-workbench installed\n"
        'MAIN_PROCESS_IP="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"\n'
        f'export MAIN_PROCESS_IP MAIN_PROCESS_PORT="${{MAIN_PROCESS_PORT:-{DEFAULT_PORT}}}"\n'
        "srun --kill-on-bad-exit=1 bash -c "
        "'MACHINE_RANK=$SLURM_NODEID exec bash \"$SLURM_SUBMIT_DIR/launch.sh\"'\n"
    )


def check_folder(folder: Path) -> None:
    """Raise JobFormatError when this version cannot follow or train the run folder `folder`."""
    problem = job_refusal(folder)
    if problem:
        raise JobFormatError(problem)


def job_refusal(folder: Path) -> str | None:
    """Why this version cannot train or read the folder (job.json, config.json), or None."""
    job_file, config_file = Path(folder) / JOB_FILE, Path(folder) / "config.json"
    try:
        if job_file.exists():
            job = read_json(job_file)
            theirs = job.get("format")
            if not isinstance(theirs, int) or not 1 <= theirs <= JOB_FORMAT:
                return (
                    f"{job_file} was written by tuning-workbench {job.get('package_version', '?')} "
                    f"(job format {theirs}), but this is tuning-workbench {package_version()}, which "
                    f"reads job format {JOB_FORMAT}: install the version that wrote it, or export "
                    "the run again from this one."
                )
        RunFolder(folder).read_info()
    except ConfigError as e:
        return (
            f"{config_file} does not fit tuning-workbench {package_version()} ({e}); it was "
            "probably written by another version: install that one, or export the run again."
        )
    except (OSError, ValueError, KeyError, AttributeError) as e:
        return f"{folder} is not a readable run folder ({e}); copy it again or export it anew."
    return None


def _warn_if_model_is_local(name: str, override: str | None) -> None:
    if override is None and Path(name).is_absolute():
        warnings.warn(
            f"The base model is the local folder {name}, which the other machine may not have: "
            "export with model='<hub id or its path there>' unless it sees the same storage.",
            stacklevel=3,
        )
