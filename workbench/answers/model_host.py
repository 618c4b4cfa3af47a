"""One base model in memory, with LoRA adapters attached by name, generating batches.

`ModelHost.run` is where every answer of the workbench is generated: left-padded batches, one
adapter per row (PEFT's set_adapter / disable_adapter, or a mixed-adapter batch), tokens
streamed to a callback as they come, and a threading.Event that stops generation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .. import models

if TYPE_CHECKING:
    from pathlib import Path

    from .generate import GenerationSettings

PEFT_BASE = "__base__"  # PEFT's name for "no adapter" in a mixed-adapter batch
END_OF_TURN_TOKENS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
    "<|endoftext|>",
)

TextCallback = Callable[[int, str], None]
"""Called as `on_text(index, text_so_far)` while answer `index` of a batch grows."""


class ModelHost:
    """One base model in memory and the LoRA adapters attached to it by name (its "slots")."""

    def __init__(self, spec: models.ModelSpec, tokenizer, model):
        self.spec, self.tokenizer, self.model = spec, tokenizer, model
        self.peft = None  # the PeftModel wrapping `model` in place, once an adapter is attached
        self.lock = threading.RLock()  # one generation at a time: the active adapter is shared
        self.stop_ids = stop_token_ids(tokenizer)

    def attach(self, name: str, folder: Path) -> None:
        """Load the adapter in `folder` as PEFT adapter `name` on this one model instance."""
        from peft import PeftModel

        with self.lock:
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(
                    self.model, str(folder), adapter_name=name, low_cpu_mem_usage=True
                )
            else:
                self.peft.load_adapter(str(folder), adapter_name=name, low_cpu_mem_usage=True)
            self.peft.eval()

    def detach(self, name: str) -> None:
        """Delete PEFT adapter `name`, freeing its weights."""
        with self.lock:
            if self.peft is not None and name in self.peft.peft_config:
                self.peft.delete_adapter(name)

    def run(
        self,
        texts: list[str],
        adapters: list[str | None],
        settings: GenerationSettings,
        on_text: TextCallback | None = None,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """Answers to rendered prompts; `adapters[i]` (None = the bare base) answers text i."""
        import torch

        batch = self.tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=False,
        ).to(self.model.device)
        kwargs = self._generate_kwargs(settings, len(texts), on_text, stop)
        with self.lock, torch.inference_mode(), self._active(adapters, kwargs) as model:
            if not settings.greedy:
                torch.manual_seed(settings.seed)
            out = model.generate(**batch, **kwargs)
        answers = out[:, batch["input_ids"].shape[1] :]
        return [self.tokenizer.decode(a, skip_special_tokens=True).strip() for a in answers]

    def _generate_kwargs(self, settings, size, on_text, stop) -> dict[str, Any]:
        from transformers import StoppingCriteriaList

        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": not settings.greedy,
            "repetition_penalty": settings.repetition_penalty,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if not settings.greedy:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=None)
        if on_text is not None:
            kwargs["streamer"] = BatchStreamer(self.tokenizer, size, self.stop_ids, on_text)
        if stop is not None:
            kwargs["stopping_criteria"] = StoppingCriteriaList([StopOnEvent(stop)])
        return kwargs

    @contextmanager
    def _active(self, adapters: list[str | None], kwargs: dict[str, Any]) -> Iterator[Any]:
        """The model to call with the asked adapters switched on (PEFT's own switches)."""
        wanted = set(adapters)
        if self.peft is None:
            yield self.model
        elif wanted == {None}:
            with self.peft.disable_adapter():
                yield self.peft
        elif len(wanted) == 1:
            self.peft.set_adapter(adapters[0], inference_mode=True)
            yield self.peft
        else:
            kwargs["adapter_names"] = [a or PEFT_BASE for a in adapters]
            yield self.peft


class BatchStreamer:
    """A transformers streamer for a whole batch: hands each row's growing text to a callback.

    TextIteratorStreamer takes one row only; here every contestant of a batch streams at once.
    """

    def __init__(self, tokenizer, size: int, stop_ids: list[int], on_text: TextCallback):
        self.tokenizer, self.stop_ids, self.on_text = tokenizer, set(stop_ids), on_text
        self.tokens: list[list[int]] = [[] for _ in range(size)]
        self.done = [False] * size
        self.prompt_seen = False

    def put(self, value) -> None:
        """Take the next token of every row (the first call brings the prompt)."""
        if not self.prompt_seen:  # generate() first hands over the prompt ids
            self.prompt_seen = True
            return
        for i, token in enumerate(value.reshape(-1).tolist()):
            if self.done[i]:
                continue
            if token in self.stop_ids:
                self.done[i] = True
                continue
            self.tokens[i].append(token)
            self.on_text(i, self.tokenizer.decode(self.tokens[i], skip_special_tokens=True))

    def end(self) -> None:
        """Nothing to flush: every token was handed over as it came."""
        pass


class StopOnEvent:
    """A stopping criterion that ends every row of a generation once `event` is set."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), device=input_ids.device)


def stop_token_ids(tokenizer) -> list[int]:
    """EOS plus the end-of-turn tokens this vocabulary knows, so answers stop at the turn's end."""
    ids = {tokenizer.eos_token_id}
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    return sorted(i for i in ids if i is not None)
