"""The parity check: the exported artefact answers as the adapter does in the workbench.

K probe prompts from the eval split are rendered with the training template. The adapter's
greedy answers (made by ModelHost, the code behind session.generate) are the reference, and its
next-token logits along those answers are recorded before it merges. The export, read back from
disk as a user would read it (transformers' own GGUF loader for a GGUF), must render the same
prompt text from its own chat template and tokenise it alike. Its logits along the adapter's own
answers (teacher forcing) must stay within what its tensor type's rounding moves them
(TOLERANCE); its free-running greedy answers are compared too, and one that parts from the
adapter's where the adapter's own top two tokens were closer than that rounding is reported as a
near tie, not as a fault: a correct F16 export must not be refused by chance of the prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import models
from ..answers.generate import GenerationSettings, as_messages
from ..answers.model_host import ModelHost
from ..templates.special_text import prompt_token_ids
from ..templates.template import Template
from .result import Parity

FALLBACK_PROBES = (
    "Write the word 'river' in capital letters.",
    "What is 12 plus 30?",
    "Name three colours of the rainbow.",
    "Reverse the order of these words: alpha beta gamma",
    "Give a one-sentence definition of a lighthouse.",
    "Sort these numbers: 9, 2, 7, 4",
    "Translate 'good morning' into French.",
    "Summarise in five words: the cat slept in the sun all afternoon.",
)
"""Prompts for a session with no eval split (a parity check needs some prompts; the eval split's
prompts are better: they are what the adapter was tuned for)."""

PROBE_BATCH = 4
"""Probes generated together. Eight at once raised the export's peak by ~50 MB on the embedded
model, four by ~10 MB (at ~1.6x the time of eight), so the check costs little beyond the weights."""


TOLERANCE = {"float32": 4e-4, "float16": 0.15, "bfloat16": 3.0, "q8_0": 5.0}
"""The largest logit difference (nats) along the adapter's own answers that a correct export of
each tensor type may show: rounding of the merged weights (and of the arithmetic, for a compute
dtype). 4x the largest that `python benchmarks/export_tolerance.py --seeds 0 1 2` measured on
the embedded model (8 probes of 48 tokens, CPU): float32 8.3e-5, F16 0.038, BF16 0.71, Q8_0
1.20. A wrong weight moves logits by whole units; a wrong template or tokenizer is found first."""
TYPES = {"f32": "float32", "f16": "float16", "fp16": "float16", "bf16": "bfloat16"}


def tolerance(tensor_type: str, compute_dtype: str = "float32") -> float:
    """The tolerance of an export whose weights are `tensor_type` ("f16", "bfloat16", "q8_0")
    read back and run in `compute_dtype`: the coarser of the two (the coarsest known for a type
    this table lacks)."""
    names = [TYPES.get(t.lower(), t.lower()) for t in (tensor_type, compute_dtype)]
    return max(TOLERANCE.get(n, max(TOLERANCE.values())) for n in names)


@dataclass
class Reference:
    """The adapter in the workbench on the probes: rendered prompts, answers, logits."""

    prompts: list[list[dict]]
    texts: list[str]
    answers: list[str]
    ids: list[list[int]]  # each prompt and its answer, tokenised by the base tokenizer
    starts: list[int]  # position of each prompt's last token: logits compared from there on
    logits: list[Path]  # float32 arrays [answer positions, vocabulary] in .npy files

    def expected(self, k: int):
        """Probe k's reference logits, memory-mapped from disk (a model's worth of RAM is
        spared: for a 150k vocabulary, 8 probes' logits are a quarter of a GB)."""
        import numpy as np
        import torch

        return torch.from_numpy(np.load(self.logits[k], mmap_mode="c"))  # copy-on-write: writable


def probe_prompts(eval_prompts: list[list[dict]], k: int) -> tuple[list[list[dict]], str]:
    """Up to `k` probe prompts: the eval split's first ones, else the fallback prompts."""
    if eval_prompts:  # a row's prompt with its tools or documents stays a row (dict)
        return [p if isinstance(p, dict) else list(p) for p in eval_prompts[:k]], "eval split"
    return [as_messages(p) for p in FALLBACK_PROBES[:k]], "built-in prompts (no eval split)"


def reference(
    model,
    tokenizer,
    template: Template,
    prompts: list[list[dict]],
    max_new_tokens: int,
    scratch: Path,
) -> Reference:
    """The adapter's greedy answers and its logits along them, before it is merged or written.

    The answers come from the workbench's own generation code (ModelHost.run, as
    session.generate), on the base model and adapter loaded for the export: the same weights,
    dtype, template and stop tokens as in the workbench, so no second model copy is needed.
    The logits are kept in `scratch`, a folder the caller removes.
    """
    import numpy as np

    bound = template.with_tokenizer(tokenizer)
    texts = [bound.render_prompt(p) for p in prompts]
    host = ModelHost(models.ModelSpec("reference"), tokenizer, model)
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    answers = _answers(host, texts, settings)
    ids, starts = [], []
    for text, answer in zip(texts, answers):
        prompt_ids = prompt_token_ids(tokenizer, text)
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ids.append(prompt_ids + answer_ids)
        starts.append(len(prompt_ids) - 1)
    scratch.mkdir(parents=True, exist_ok=True)
    logits = []
    for k, (i, s) in enumerate(zip(ids, starts)):
        logits.append(scratch / f"probe-{k}.npy")
        np.save(logits[-1], _logits(model, i, s).numpy())
    return Reference(prompts, texts, answers, ids, starts, logits)


def _answers(host: ModelHost, texts: list[str], settings: GenerationSettings) -> list[str]:
    """Greedy answers to `texts`, PROBE_BATCH at a time (reference and check batch alike)."""
    answers: list[str] = []
    for i in range(0, len(texts), PROBE_BATCH):
        chunk = texts[i : i + PROBE_BATCH]
        answers += host.run(chunk, [None] * len(chunk), settings)
    return answers


def _logits(model, ids: list[int], start: int):
    import torch

    with torch.inference_mode():  # the answer's positions only: no vocabulary-wide prompt logits
        batch = torch.tensor([ids], device=model.device)
        try:
            out = model(input_ids=batch, logits_to_keep=len(ids) - start).logits[0]
        except TypeError:  # an architecture without logits_to_keep: all positions, then cut
            out = model(input_ids=batch).logits[0, start:]
    return out.float().cpu()


def check(
    model,
    tokenizer,
    chat_template: str,
    ref: Reference,
    max_new_tokens: int,
    artefact: str,
    required: bool,
    limit: float,
    stops: list[int] | None = None,
) -> Parity:
    """Compare an exported model (read back) and its tokenizer with the reference.

    `chat_template`: the Jinja the export carries; `stops`: the stop ids it declares (None when
    the format has no list of its own); `required`: whether a difference fails the export;
    `limit`: the logit difference its rounding may cause (`tolerance`).
    """
    problems = _text_problems(tokenizer, chat_template, ref)
    host = ModelHost(models.ModelSpec(artefact), tokenizer, model)
    if stops is not None and set(stops) != set(host.stop_ids):
        problems.append(f"stop tokens {sorted(stops)} differ from the workbench's {host.stop_ids}")
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    answers = _answers(host, ref.texts, settings)
    first = None
    for k, (prompt, want, got) in enumerate(zip(ref.prompts, ref.answers, answers)):
        if want != got and first is None:
            first = {"probe": k + 1, "prompt": _last_user(prompt), "adapter": want, "export": got}
    agree = sum(a == b for a, b in zip(ref.answers, answers))
    diff = max(
        float((_logits(model, i, s) - ref.expected(k)).abs().max())
        for k, (i, s) in enumerate(zip(ref.ids, ref.starts))
    )
    parity = Parity(artefact, len(ref.texts), agree, diff, required, first, problems)
    parity.tolerance = limit
    parity.partings = [
        {"probe": k + 1, "margin": parting_margin(tokenizer, ref, k, got, host.stop_ids)}
        for k, (want, got) in enumerate(zip(ref.answers, answers))
        if want != got
    ]
    return parity


def parting_margin(tokenizer, ref: Reference, k: int, answer: str, stops: list[int]) -> float:
    """How much the adapter preferred its own token over the export's where probe k's answers
    part (nats, from the adapter's logits along its answer): near 0, a near tie that rounding
    tips; large, a real difference. A stop token stands for an answer that ended there."""
    mine = ref.ids[k][ref.starts[k] + 1 :]
    theirs = tokenizer(answer, add_special_tokens=False)["input_ids"]
    j = next(
        (j for j, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs))
    )
    logits = ref.expected(k)[j]
    stop = max(float(logits[s]) for s in stops) if stops else float("-inf")
    mine_j = float(logits[mine[j]]) if j < len(mine) else stop
    theirs_j = float(logits[theirs[j]]) if j < len(theirs) else stop
    return mine_j - theirs_j


def _text_problems(tokenizer, chat_template: str, ref: Reference) -> list[str]:
    """Differences in what the model reads: the rendered prompt, then its tokens."""
    if not chat_template:
        return ["the export carries no chat template"]
    bound = Template(chat_template).with_tokenizer(tokenizer)
    for k, (prompt, text) in enumerate(zip(ref.prompts, ref.texts)):
        if bound.render_prompt(prompt) != text:
            return [f"its chat template renders probe {k + 1} differently from the training one"]
    for k, (text, ids, start) in enumerate(zip(ref.texts, ref.ids, ref.starts)):
        if prompt_token_ids(tokenizer, text) != ids[: start + 1]:
            return [f"its tokenizer splits probe {k + 1} into other tokens"]
    return []


def _last_user(prompt: list[dict] | dict) -> str:
    prompt = prompt["messages"] if isinstance(prompt, dict) else prompt
    users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
    return str(users[-1] if users else prompt[-1].get("content", ""))
