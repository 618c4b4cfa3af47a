"""Inside the runner: which process this is, what it may use, and decisions all processes share.

Every process of a run trains; only the main one (rank 0) writes the run folder: status.json,
metrics.jsonl and adapter/. The Trainer writes checkpoints by the same rule. Decisions that
change the training loop (stop now) are agreed by all ranks at once, or they would fall out of
step and wait on each other for ever.
"""

from __future__ import annotations

import os
from typing import Any

from ..config import TrainConfig
from ..distributed import usable_cpus


def start_process_group(device: str):
    """Join the run's processes (a no-op for one process) and take this rank's share of the CPU.

    Returns accelerate's PartialState, which the Trainer's Accelerator then shares. On a machine
    without a GPU it asks for CPU processes over gloo.
    """
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, usable_cpus() // max(1, local)))
    return state


def launcher_pid() -> int:
    """The process that a Run watches and signals: the launcher under torchrun, else this one."""
    return os.getppid() if "TORCHELASTIC_RUN_ID" in os.environ else os.getpid()


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any rank (one all-reduce; local alone if single)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    from accelerate import PartialState

    value = torch.tensor([1.0 if flag else 0.0], device=PartialState().device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def sum_over_ranks(*values: int) -> list[int]:
    """Each value summed over all ranks (itself when single): tokens seen by the whole run."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(values)
    from accelerate import PartialState

    tensor = torch.tensor(values, dtype=torch.float64, device=PartialState().device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [int(v) for v in tensor.tolist()]


def replicas_agree(model) -> bool:
    """Whether every rank holds the same trainable weights, as DDP promises (True when single).

    Checked before the adapter is saved from rank 0 alone: a mismatch would mean the saved
    adapter is one rank's view, not the run's.
    """
    import torch

    trainable = [p.detach().float() for p in model.parameters() if p.requires_grad]
    local = torch.stack([t.sum() for t in trainable]).sum() if trainable else torch.zeros(())
    low, high = _min_max(local.double())
    return abs(high - low) <= 1e-6 * max(1.0, abs(high))


def _min_max(value) -> tuple[float, float]:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return float(value), float(value)
    from accelerate import PartialState

    both = torch.stack([value, -value]).to(PartialState().device)
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    return -float(both[1]), float(both[0])


def model_placement(config: TrainConfig, device: str) -> dict[str, Any]:
    """from_pretrained arguments that put this rank's copy of the base model where it trains.

    DDP: each process loads onto its own GPU (device_map to its local device). FSDP: the model
    loads without a device map and FSDP places the shards; 4-bit weights are then stored in a
    float type (bnb_4bit_quant_storage) that FSDP can shard, and the model's dtype matches it.
    """
    import torch
    from accelerate import PartialState

    from ...models import compute_dtype, quantization_config

    kwargs: dict[str, Any] = {}
    storage = config.bnb_4bit_quant_storage
    if config.quantize_4bit:
        quant = quantization_config(device=device)
        if storage:
            quant.bnb_4bit_quant_storage = getattr(torch, storage)
        kwargs["quantization_config"] = quant
    if config.fsdp:
        kwargs["dtype"] = getattr(torch, storage) if storage else compute_dtype(device)
    else:
        kwargs["device_map"] = {"": PartialState().device}
        if not config.quantize_4bit:
            kwargs["dtype"] = compute_dtype(device) if device == "cuda" else torch.float32
    return kwargs
