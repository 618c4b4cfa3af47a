"""How a run is spread over processes: the device check, the accelerate config, the command.

One process runs as `python -m workbench.train RUN_DIR`. More run through `accelerate launch`
with an accelerate config file written into the run folder from the TrainConfig, so what each
run asks of accelerate is visible, and a user's own default accelerate config never leaks in.
On a CPU the processes talk over gloo: accelerate's MULTI_GPU launcher (torchrun) starts them,
and the runner asks for CPU processes (accelerate's own MULTI_CPU type would start only one).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

from .config import ConfigError, TrainConfig

ACCELERATE_CONFIG = "accelerate_config.yaml"
DEFAULT_PORT = 29500
# Set for every runner unless the environment sets it: PyTorch then allocates CPU tensors of
# 2 MB and more 2 MB-aligned and asks Linux for transparent huge pages for them
# (THP_MEM_ALLOC_ENABLE, c10's alloc_cpu). glibc's heap otherwise keeps the freed temporaries of
# a long packed step: packed 8 x 512 on the embedded model peaked at 7.1 GB with LoRA and 4.4 GB
# with QLoRA, and 2.7 and 2.2 GB with it, at 10-20% more tokens/s (benchmarks/train_memory.py).
RUNNER_ENV_DEFAULTS = {"THP_MEM_ALLOC_ENABLE": "1"}
CONFIG_HEADER = (
    "# Written by tuning-workbench from config.json (TrainConfig); docs/distributed.md explains\n"
    "# each value. Command-line flags of `accelerate launch` override what is here.\n"
    "# mixed_precision 'no' with TrainConfig.mixed_precision=None lets the runner choose\n"
    "# bf16 or fp16 for the GPU it finds.\n"
)


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_devices(config: TrainConfig) -> None:
    """Refuse, before anything is written or started, a process count this machine cannot hold.

    With GPUs each process takes one: num_processes <= the GPUs present. Without, each
    process takes a CPU core and the processes talk over gloo: num_processes <= the usable cores.
    """
    import torch

    if config.num_machines > 1:
        raise ConfigError(
            f"num_machines={config.num_machines} needs a launch on every machine, which a "
            "notebook cannot do: prepare the run with session.train(config, start=False), then "
            "run.export_job(folder) and start its launch.sh or slurm.sbatch there."
        )
    n = config.num_processes
    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        if n > gpus:
            raise ConfigError(
                f"num_processes={n} needs one GPU per process, but this machine has {gpus}: "
                f"set num_processes to {gpus} or fewer, or export the run to a bigger machine."
            )
        if config.gpu is not None and config.gpu >= gpus:
            raise ConfigError(
                f"gpu={config.gpu} names a GPU this machine lacks (it has GPUs 0 to {gpus - 1}): "
                "choose one of those, or leave gpu unset to take the first free one."
            )
        return
    if config.gpu is not None:
        raise ConfigError(
            f"gpu={config.gpu} names a GPU, and this machine has none: leave it unset."
        )
    cores = usable_cpus()
    if n > cores:
        raise ConfigError(
            f"num_processes={n} needs one CPU core per process on a machine without a GPU, but "
            f"{cores} are usable here: set num_processes to {cores} or fewer."
        )
    if config.mixed_precision == "fp16" or config.fsdp:
        what = "mixed_precision='fp16'" if config.mixed_precision == "fp16" else "fsdp=True"
        raise ConfigError(f"{what} needs GPUs, and this machine has none: leave it unset here.")


def machine_devices() -> list[str]:
    """What runs take turns on here: ["cuda:0", "cuda:1", ...] (the GPUs this process sees),
    or ["cpu"] on a machine without a GPU, where one run at a time trains."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(gpus)] or ["cpu"]


def visible_devices_env(devices: list[str]) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES for a runner given `devices` (this process's "cuda:N" numbering,
    mapped through its own CUDA_VISIBLE_DEVICES when set); {} for the CPU or no devices."""
    indices = [int(d.split(":")[1]) for d in devices if d.startswith("cuda:")]
    if not indices:
        return {}
    seen = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [x.strip() for x in seen.split(",") if x.strip()] if seen else None
    return {"CUDA_VISIBLE_DEVICES": ",".join(names[i] if names else str(i) for i in indices)}


def accelerate_config(config: TrainConfig) -> dict[str, Any]:
    """The accelerate config (the keys of `accelerate config`'s file) that a TrainConfig asks for."""
    values: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "FSDP" if config.fsdp else "MULTI_GPU",
        "num_processes": config.num_processes,
        "num_machines": config.num_machines,
        "machine_rank": 0,
        "main_process_ip": None,
        "main_process_port": DEFAULT_PORT,
        "mixed_precision": config.mixed_precision or "no",
        "gpu_ids": "all",
        "use_cpu": False,  # the runner asks for CPU processes itself when there is no GPU
        "rdzv_backend": "static",
        "same_network": True,
        "downcast_bf16": "no",
    }
    if config.fsdp:
        values["fsdp_config"] = fsdp_config(config)
    return values


def fsdp_config(config: TrainConfig) -> dict[str, Any]:
    """FSDP settings known to work with LoRA and with 4-bit weights (PEFT's FSDP-QLoRA recipe)."""
    return {
        "fsdp_version": 1,
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "fsdp_sharding_strategy": "FULL_SHARD",
        "fsdp_backward_prefetch": "BACKWARD_PRE",
        "fsdp_forward_prefetch": False,
        "fsdp_state_dict_type": "SHARDED_STATE_DICT",  # checkpoints: each rank its own shard
        "fsdp_offload_params": config.fsdp_offload,
        "fsdp_cpu_ram_efficient_loading": True,
        "fsdp_sync_module_states": True,
        "fsdp_use_orig_params": False,
    }


def write_accelerate_config(config: TrainConfig, folder: Path) -> Path:
    """Write accelerate_config.yaml into a run or job folder; returns its path."""
    import yaml

    from ..persist import atomic_write_text

    path = Path(folder) / ACCELERATE_CONFIG
    body = yaml.safe_dump(accelerate_config(config), sort_keys=False)
    atomic_write_text(path, CONFIG_HEADER + body)
    return path


def runner_command(config: TrainConfig, run_dir: Path, port: int | None = None) -> list[str]:
    """The command line that runs RUN_DIR here: the runner alone, or under accelerate launch."""
    if not config.distributed:
        return [sys.executable, "-m", "workbench.train", str(run_dir)]
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(Path(run_dir) / ACCELERATE_CONFIG),
        "--main_process_port",
        str(port or free_port()),
        "-m",
        "workbench.train",
        str(run_dir),
    ]


def free_port() -> int:
    """A TCP port free right now, so two local runs never meet on accelerate's default port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
