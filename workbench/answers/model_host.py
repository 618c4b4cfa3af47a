"""One base model in memory, with LoRA adapters attached by name, generating batches.

`ModelHost.run` is where every answer of the workbench is generated: left-padded batches, one
adapter per row (PEFT's set_adapter / disable_adapter, or a mixed-adapter batch), tokens
streamed to a callback as they come, and a threading.Event that stops generation. Base
tensors an adapter replaces (trained biases) are swapped in only while that adapter answers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import models
from ..templates.special_text import encode_prompts
from ..templates.stops import stop_token_ids

if TYPE_CHECKING:
    from pathlib import Path

    from .generate import GenerationSettings

PEFT_BASE = "__base__"  # PEFT's name for "no adapter" in a mixed-adapter batch

TextCallback = Callable[[int, str], None]
"""Called as `on_text(index, text_so_far)` while answer `index` of a batch grows."""


class ModelHost:
    """One base model in memory and the LoRA adapters attached to it by name (its "slots")."""

    def __init__(self, spec: models.ModelSpec, tokenizer, model):
        self.spec, self.tokenizer, self.model = spec, tokenizer, model
        self.peft = None  # the PeftModel wrapping `model` in place, once an adapter is attached
        self.lock = threading.RLock()  # one generation at a time: the active adapter is shared
        self.stop_ids = stop_token_ids(tokenizer)
        self.swaps: dict[str, dict[str, Any]] = {}  # adapter -> base tensors it replaces
        self.originals: dict[str, Any] = {}  # the base's own values of those tensors

    @property
    def document_start(self) -> str:
        """What the tokenizer puts before a bare text (BOS for Llama-style vocabularies, nothing
        for SmolLM2's): a document continued without a chat template starts with it."""
        bare = self.tokenizer("a", add_special_tokens=False).input_ids
        full = self.tokenizer("a").input_ids
        head = full[: len(full) - len(bare)] if full[-len(bare) :] == bare else []
        return self.tokenizer.decode(head)

    def attach(self, name: str, folder: Path) -> None:
        """Load the adapter in `folder` as PEFT adapter `name` on this one model instance.

        Base tensors the adapter replaces (biases saved with bias="all" or "lora_only") are put
        in only while it answers, so the base and the other adapters keep their own. A load that
        PEFT refuses (two adapters that cannot share a layer) is undone and raised as AdapterError.
        """
        from peft import LoraConfig, PeftModel

        from .adapters import AdapterError, base_tensors

        with self.lock:
            others = list(self.peft.peft_config) if self.peft is not None else []
            replaced: dict[str, Any] = {}
            try:
                config = LoraConfig.from_pretrained(str(folder))
                replaced = self._replaced_tensors(base_tensors(folder, config))
                config.bias = "none"  # PEFT holds one adapter with biases; swaps do it here
                if self.peft is None:
                    self.peft = PeftModel.from_pretrained(
                        self.model,
                        str(folder),
                        adapter_name=name,
                        config=config,
                        low_cpu_mem_usage=True,
                    )
                else:
                    self.peft.add_adapter(name, config, low_cpu_mem_usage=True)
                    self.peft.load_adapter(str(folder), adapter_name=name, low_cpu_mem_usage=True)
            except Exception as e:  # PEFT's own refusal, after part of the adapter was put in
                self._undo(name, replaced)
                advice = (
                    " next to the adapters already attached; compare it without them"
                    if others
                    else ""
                )
                raise AdapterError(
                    f"PEFT could not load the adapter in {folder} onto {self.spec.display_name!r}"
                    f"{advice} ({type(e).__name__}: {e})."
                ) from e
            self.peft.eval()
            self._keep_swaps(name, replaced)

    def _replaced_tensors(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """The adapter's tensors that differ from the base's, remembering the base's values."""
        import torch

        differ = {}
        for param_name, value in tensors.items():
            live = self._parameter(param_name)
            if live is None or torch.equal(live.detach().cpu(), value.to(live.dtype)):
                continue
            self.originals.setdefault(param_name, live.detach().clone())
            differ[param_name] = value
        return differ

    def _keep_swaps(self, name: str, replaced: dict[str, Any]) -> None:
        """Keep the adapter's own base tensors apart and put the base's back in the model."""
        if replaced:
            self.swaps[name] = replaced
            self._put(self.originals)

    def _put(self, tensors: dict[str, Any]) -> None:
        import torch

        with torch.no_grad():
            for param_name, value in tensors.items():
                live = self._parameter(param_name)
                live.copy_(value.to(device=live.device, dtype=live.dtype))

    def _parameter(self, name: str):
        """A base tensor by its name in the base model, also once PEFT has wrapped its layer."""
        owner, _, leaf = name.rpartition(".")
        for candidate in (name, f"{owner}.base_layer.{leaf}"):
            try:
                return self.model.get_parameter(candidate)
            except AttributeError:
                continue
        return None

    def _undo(self, name: str, replaced: dict[str, Any]) -> None:
        """Take out whatever PEFT put in of a failed adapter (config, layers, copies, biases)."""
        from peft.tuners.tuners_utils import delete_adapter

        if self.peft is not None:
            self.peft.peft_config.pop(name, None)
        with contextlib.suppress(Exception):  # nothing of it was put in
            delete_adapter(self.model, name, prefix="lora_")
        self._put({n: self.originals[n] for n in replaced})

    def detach(self, name: str) -> None:
        """Delete PEFT adapter `name`, freeing its weights."""
        with self.lock:
            if self.peft is not None and name in self.peft.peft_config:
                self.peft.delete_adapter(name)
            self.swaps.pop(name, None)

    def run(
        self,
        texts: list[str],
        adapters: list[str | None],
        settings: GenerationSettings,
        on_text: TextCallback | None = None,
        stop: threading.Event | None = None,
        done: Callable[[str], bool] | None = None,
    ) -> list[str]:
        """Answers to rendered prompts; `adapters[i]` (None = the bare base) answers text i.
        `done(text)`: a row ends once it says that row's answer so far is whole (StopWhenDone).

        Rows of adapters that PEFT cannot mix with others in one batch (DoRA, or base tensors
        of their own) answer in a batch of their own, one after the other.
        """
        groups = self._batches(adapters)
        if len(groups) == 1:
            return self._run_batch(texts, adapters, settings, on_text, stop, done)
        answers = [""] * len(texts)
        for rows in groups:
            if stop is not None and stop.is_set():
                break
            relay = None if on_text is None else _relay(on_text, rows)
            texts_of, adapters_of = [texts[i] for i in rows], [adapters[i] for i in rows]
            for i, answer in zip(
                rows, self._run_batch(texts_of, adapters_of, settings, relay, stop, done)
            ):
                answers[i] = answer
        return answers

    def _batches(self, adapters: list[str | None]) -> list[list[int]]:
        """The rows that generate together: all of them, or one group per adapter when a mixed
        batch holds an adapter that PEFT cannot mix."""
        if len(set(adapters)) == 1 or not any(self._alone(a) for a in adapters):
            return [list(range(len(adapters)))]
        groups: dict[str | None, list[int]] = {}
        for i, adapter in enumerate(adapters):
            groups.setdefault(adapter, []).append(i)
        return list(groups.values())

    def _alone(self, name: str | None) -> bool:
        if name is None or self.peft is None:
            return False
        return name in self.swaps or bool(
            getattr(self.peft.peft_config.get(name), "use_dora", False)
        )

    def complete(
        self,
        texts: list[str],
        adapter: str | None,
        settings: GenerationSettings,
        stop: threading.Event | None = None,
        done: Callable[[str], bool] | None = None,
    ) -> list[Continuation]:
        """Continuations of rendered texts by one adapter (None: the base), each saying whether
        it ran out of tokens (max_new_tokens) rather than ending: a stop token or `done`."""
        return self._run_batch(texts, [adapter] * len(texts), settings, None, stop, done, True)

    def _run_batch(self, texts, adapters, settings, on_text, stop, done=None, whole=False):
        import torch

        batch = encode_prompts(self.tokenizer, texts).to(self.model.device)
        kwargs = self._generate_kwargs(settings, len(texts), on_text, stop)
        if done is not None:
            from transformers import StoppingCriteriaList

            finished = StopWhenDone(self.tokenizer, batch["input_ids"].shape[1], done)
            criteria = [*kwargs.get("stopping_criteria", []), finished]
            kwargs["stopping_criteria"] = StoppingCriteriaList(criteria)
        with self.lock, torch.inference_mode(), self._active(adapters, kwargs) as model:
            if not settings.greedy:
                torch.manual_seed(settings.seed)
            out = model.generate(**batch, **kwargs)
        answers = out[:, batch["input_ids"].shape[1] :].tolist()
        texts = [self.tokenizer.decode(a, skip_special_tokens=True).strip() for a in answers]
        if not whole:
            return texts
        ends = {*self.stop_ids, self.tokenizer.pad_token_id}  # finished rows are padded after
        return [
            Continuation(
                text,
                ran_out=len(ids) >= settings.max_new_tokens
                and not ends.intersection(ids)
                and not (done and done(text)),
            )
            for text, ids in zip(texts, answers)
        ]

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
            kwargs.update(
                temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k or None
            )
        if on_text is not None:
            kwargs["streamer"] = BatchStreamer(self.tokenizer, size, self.stop_ids, on_text)
        if stop is not None:
            kwargs["stopping_criteria"] = StoppingCriteriaList([StopOnEvent(stop)])
        return kwargs

    @contextmanager
    def active(self, adapter: str | None) -> Iterator[Any]:
        """The model with `adapter` switched on (None: the base alone), exactly as generation
        sees it, held for this caller alone (the host's lock) until the block ends."""
        with self.lock, self._active([adapter], {}) as model:
            yield model

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
            swaps = self.swaps.get(adapters[0], {})
            self._put(swaps)  # the adapter's own biases, only while it answers
            try:
                yield self.peft
            finally:
                self._put({n: self.originals[n] for n in swaps})
        else:
            kwargs["adapter_names"] = [a or PEFT_BASE for a in adapters]
            yield self.peft


@dataclass(frozen=True)
class Continuation:
    """A generated text, and whether it ran out of tokens before it ended (so it is cut)."""

    text: str
    ran_out: bool = False


def _relay(on_text: TextCallback, rows: list[int]) -> TextCallback:
    return lambda k, text: on_text(rows[k], text)


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


class StopWhenDone:
    """A stopping criterion that ends each row once `done(its new text)` is true, e.g. a
    synthesis answer that has begun a second example (the rest would be thrown away)."""

    def __init__(self, tokenizer, prompt_length: int, done: Callable[[str], bool]):
        self.tokenizer, self.start, self.done = tokenizer, prompt_length, done

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.start :], skip_special_tokens=True)
        return torch.tensor([self.done(t) for t in texts], device=input_ids.device)
