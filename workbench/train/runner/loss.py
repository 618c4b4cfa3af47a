"""The causal-LM loss without the full logits: cross-entropy a chunk of trained positions at a time.

transformers projects every position onto the vocabulary (batch x length x vocabulary, upcast to
float32, with copies kept for the backward pass): for a 49k vocabulary and 8 x 512 tokens that
is 0.8 GB per copy. Here only trained positions are projected, a chunk at a time, and each chunk's
gradient is taken at once, so one chunk of logits exists at a time (the idea of Liger's fused
linear cross-entropy, whose kernel is used on CUDA when `liger-kernel` is installed). The value is
transformers' ForCausalLMLoss: the summed loss of trained tokens over `num_items_in_batch` (every
micro-batch of a gradient-accumulation step) when the Trainer gives it, else over this batch's.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F

from ..estimate import chunk_positions
from .collate import IGNORE_INDEX


def causal_lm_loss(
    hidden: torch.Tensor,
    labels: torch.Tensor,
    lm_head: torch.nn.Module,
    num_items_in_batch: torch.Tensor | int | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """Mean next-token cross-entropy of `labels` (-100: not trained) from the last hidden states.

    Equals transformers' ForCausalLMLoss on `lm_head(hidden)`, for padded, padding-free and packed
    batches alike (a label of -100 marks every position that does not train).
    """
    targets = F.pad(labels[..., 1:], (0, 1), value=IGNORE_INDEX).reshape(-1).to(hidden.device)
    trained = targets != IGNORE_INDEX
    states = hidden.reshape(-1, hidden.shape[-1])[trained]
    total = summed_cross_entropy(states, targets[trained], lm_head, chunk)
    divisor = trained.sum() if num_items_in_batch is None else num_items_in_batch
    if torch.is_tensor(divisor):
        divisor = divisor.to(total.device)
    return total / divisor


def summed_cross_entropy(
    states: torch.Tensor, targets: torch.Tensor, lm_head: torch.nn.Module, chunk: int | None = None
) -> torch.Tensor:
    """Sum of cross-entropy of `lm_head(states)` against `targets`, one chunk of rows at a time.

    A plain Linear head takes the fused path (its gradient computed chunk by chunk in the forward
    pass); any other head (a LoRA-wrapped lm_head) is recomputed chunk by chunk in the backward.
    """
    chunk = chunk or chunk_positions(_vocab(lm_head))
    if type(lm_head) is torch.nn.Linear:
        fused = _liger_sum(states, targets, lm_head)
        if fused is not None:
            return fused
        grads = torch.is_grad_enabled()
        return LinearCrossEntropy.apply(states, lm_head.weight, lm_head.bias, targets, chunk, grads)
    total = states.new_zeros((), dtype=torch.float32)
    for start in range(0, states.shape[0], chunk):
        part = (states[start : start + chunk], targets[start : start + chunk], lm_head)
        if torch.is_grad_enabled():
            total = total + torch.utils.checkpoint.checkpoint(
                _chunk_sum, *part, use_reentrant=False
            )
        else:
            total = total + _chunk_sum(*part)
    return total


def _vocab(lm_head) -> int:
    """The head's output size: a Linear's, a PEFT wrapper's, or its weight's rows."""
    if getattr(lm_head, "out_features", None):
        return int(lm_head.out_features)
    weight = getattr(lm_head, "weight", None)
    return int(weight.shape[0]) if weight is not None else 32_768


def _chunk_sum(states: torch.Tensor, targets: torch.Tensor, lm_head) -> torch.Tensor:
    return F.cross_entropy(lm_head(states).float(), targets, reduction="sum")


def _liger_sum(states: torch.Tensor, targets: torch.Tensor, lm_head) -> torch.Tensor | None:
    """Liger's fused kernel on CUDA when installed; None where it does not apply."""
    if not states.is_cuda:
        return None
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
    except ImportError:
        return None
    loss = LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE_INDEX, reduction="sum")
    return loss(lm_head.weight, states, targets, lm_head.bias).float()


class LinearCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of `states @ weight.T + bias`, chunk by chunk, with each chunk's
    gradient taken in the forward pass: the backward only scales the stored gradients."""

    @staticmethod
    def forward(ctx, states, weight, bias, targets, chunk: int, grads: bool):
        want = [grads and need for need in ctx.needs_input_grad[:3]]
        total = states.new_zeros((), dtype=torch.float32)
        grad_states = torch.empty_like(states) if want[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if want[1] else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if want[2] else None
        for start in range(0, states.shape[0], chunk):
            part, aim = states[start : start + chunk], targets[start : start + chunk]
            logits = F.linear(part, weight, bias)
            low = logits.dtype  # transformers upcasts the model's logits the same way
            logits = logits.float()
            norm = torch.logsumexp(logits, dim=-1)
            total += (norm - logits.gather(1, aim[:, None]).squeeze(1)).sum()
            if not any(want):
                continue
            probs = logits.sub_(norm[:, None]).exp_()  # softmax, in place of the logits
            probs[torch.arange(aim.shape[0], device=aim.device), aim] -= 1
            grad = probs.to(low)
            if grad_states is not None:
                grad_states[start : start + chunk] = (grad @ weight.to(low)).to(states.dtype)
            if grad_weight is not None:
                grad_weight += (grad.T @ part.to(low)).float()
            if grad_bias is not None:
                grad_bias += grad.sum(0).float()
        ctx.save_for_backward(grad_states, grad_weight, grad_bias)
        ctx.dtypes = (states.dtype, weight.dtype, None if bias is None else bias.dtype)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_states, grad_weight, grad_bias = ctx.saved_tensors
        grads = (grad_states, grad_weight, grad_bias)
        scaled = [None if g is None else (g * grad_total).to(t) for g, t in zip(grads, ctx.dtypes)]
        return (*scaled, None, None, None)


class ChunkedLoss:
    """A Trainer mixin: the causal-LM loss from the last hidden states, chunked (causal_lm_loss).

    Falls back to the Trainer's own loss where it does not apply: FSDP (the head is sharded
    outside the forward), label smoothing, a custom loss function, or a model without
    `logits_to_keep`. The loss is scaled for gradient accumulation exactly as transformers does.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        parts = None if self._own_loss_off(inputs) else loss_parts(model, self.accelerator)
        if parts is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        decoder, lm_head = parts
        fields = {k: v for k, v in inputs.items() if k != "labels"}
        hidden, outputs = last_hidden_states(model, decoder, fields)
        items = num_items_in_batch if self.model_accepts_loss_kwargs else None
        loss = causal_lm_loss(hidden, inputs["labels"], lm_head, items)
        if self.args.average_tokens_across_devices and items is not None:
            tp = self.get_tp_size() if hasattr(self, "get_tp_size") else 1
            n_gpu = self.args.n_gpu
            loss = loss * (self.accelerator.num_processes // tp if n_gpu <= 1 else n_gpu)
        return (loss, outputs) if return_outputs else loss

    def _own_loss_off(self, inputs: dict) -> bool:
        return (
            "labels" not in inputs
            or self.is_fsdp_enabled
            or self.label_smoother is not None
            or self.compute_loss_func is not None
        )


def loss_parts(model, accelerator=None) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(the decoder body, the lm_head) of a causal LM, through DDP and PEFT wrappers; None when
    the model cannot skip its logits (no `logits_to_keep`)."""
    unwrapped = accelerator.unwrap_model(model) if accelerator is not None else model
    base = unwrapped.get_base_model() if hasattr(unwrapped, "get_base_model") else unwrapped
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return None
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    lm_head = base.get_output_embeddings()
    if decoder is None or lm_head is None:
        return None
    return decoder, lm_head


def last_hidden_states(model, decoder, inputs: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    """Run the whole model (through its wrappers) with no positions kept for logits; return the
    decoder's last hidden states, caught on their way out, and the model's outputs."""
    caught: dict[str, torch.Tensor] = {}

    def catch(module, args, output):
        caught["hidden"] = output[0] if isinstance(output, tuple) else output.last_hidden_state

    device = inputs["input_ids"].device if "input_ids" in inputs else None
    none = torch.empty(0, dtype=torch.long, device=device)
    handle = decoder.register_forward_hook(catch)
    try:
        outputs = model(**inputs, logits_to_keep=none)
    finally:
        handle.remove()
    return caught["hidden"], outputs
