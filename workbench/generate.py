"""Generation: answers from the base model, with the session's template and shared settings.

One base model is loaded per Generator and serves every contestant; prompts are batched with
left padding so a batch costs about one forward pass per token, not one per prompt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from . import models
from .templates import Template

END_OF_TURN_TOKENS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
    "<|endoftext|>",
)


@dataclass(frozen=True)
class GenerationSettings:
    """Settings every contestant shares; temperature 0 means greedy (reproducible)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1; got {self.max_new_tokens}.")
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or more; got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1]; got {self.top_p}.")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def as_messages(prompt: str | list[dict], system_prompt: str | None = None) -> list[dict]:
    """A prompt as chat messages, with the system prompt first when one is set and none is given."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system_prompt and not (messages and messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


class Generator:
    """Holds one base model in memory and answers prompts with it."""

    def __init__(self, spec: models.ModelSpec, template: Template):
        self.spec = spec
        self.tokenizer = models.load_tokenizer(spec)
        self.template = template.with_tokenizer(self.tokenizer)
        self.model = models.load_model(spec)
        self.model.eval()

    def stop_token_ids(self) -> list[int]:
        """EOS plus the end-of-turn tokens this vocabulary knows, so answers stop at the turn's end."""
        ids = {self.tokenizer.eos_token_id}
        vocab = self.tokenizer.get_vocab()
        ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
        return sorted(i for i in ids if i is not None)

    def generate(self, prompt: str | list[dict], model: str, settings: GenerationSettings) -> str:
        """One answer from one contestant."""
        return self.generate_batch([prompt], model, settings)[0]

    def generate_batch(
        self, prompts: list[str | list[dict]], model: str, settings: GenerationSettings
    ) -> list[str]:
        """Answers to several prompts, generated together with left padding."""
        import torch

        if model != "base":
            raise KeyError(f"No contestant named {model!r}; this session serves: base.")
        texts = [
            self.template.render_prompt(as_messages(p, settings.system_prompt)) for p in prompts
        ]
        self.tokenizer.padding_side = "left"
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(self.model.device)
        sampling = settings.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": sampling,
            "repetition_penalty": settings.repetition_penalty,
            "eos_token_id": self.stop_token_ids(),
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if sampling:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
            torch.manual_seed(settings.seed)
        with torch.inference_mode():
            out = self.model.generate(**batch, **kwargs)
        answers = out[:, batch["input_ids"].shape[1] :]
        return [self.tokenizer.decode(a, skip_special_tokens=True).strip() for a in answers]
