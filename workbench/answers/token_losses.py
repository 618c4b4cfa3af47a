"""Per-token loss: how surprised each model is by every token of one conversation.

Tokens and labels come from the template preview, i.e. `tokenize_with_labels`, the function
training uses, so the tokens scored are exactly those a run trains on. Every model is "base" or
an adapter on the generator's one base model, switched on the way generation switches it
(ModelHost's active adapter, its own biases swapped in), one forward pass per model.
"""

from __future__ import annotations

import html
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..templates.preview import preview

if TYPE_CHECKING:
    from ..templates.template import Template
    from .generate import Generator
    from .model_host import ModelHost

Losses = list[float | None]


@dataclass(frozen=True)
class TokenLosses:
    """Every token of a rendered conversation: its text, whether it trains, each model's loss.

    `losses[model][t]` is the cross-entropy in nats of predicting token t from the tokens before
    it, None where token t does not train (masked, or the first token, which training never
    predicts). `template` names the template that rendered the conversation for every model;
    `truncated_trained` counts trained tokens past max_length, which are not scored.
    """

    tokens: list[str]
    token_ids: list[int]
    trained: list[bool]
    losses: dict[str, Losses]
    special: list[bool] = field(default_factory=list)
    template: str = ""
    truncated_trained: int = 0

    @property
    def models(self) -> list[str]:
        """The models scored, in the order asked."""
        return list(self.losses)

    @property
    def num_trained(self) -> int:
        """Tokens that carry a loss."""
        return sum(self.trained)

    def mean(self, model: str) -> float:
        """`model`'s mean loss over the trained tokens, in nats (training's loss on this row)."""
        values = [v for v in self._of(model) if v is not None]
        return sum(values) / len(values)

    def difference(self, model: str, baseline: str) -> Losses:
        """Per token, `model`'s loss minus `baseline`'s in nats: negative where `model` predicts
        the token better (tuning taught it); None on tokens that do not train."""
        ours, theirs = self._of(model), self._of(baseline)
        return [None if a is None or b is None else a - b for a, b in zip(ours, theirs)]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per token (position, text, trained, then each model's loss): a table's rows,
        e.g. `pandas.DataFrame(losses.rows())`."""
        return [
            {"position": t, "text": text, "trained": trained}
            | {m: values[t] for m, values in self.losses.items()}
            for t, (text, trained) in enumerate(zip(self.tokens, self.trained))
        ]

    def _of(self, model: str) -> Losses:
        if model not in self.losses:
            raise KeyError(f"No losses of {model!r} here; scored: {', '.join(self.losses)}.")
        return self.losses[model]

    def __repr__(self) -> str:
        means = ", ".join(f"{m} {self.mean(m):.3f}" for m in self.losses)
        return (
            f"TokenLosses({len(self.tokens)} tokens, {self.num_trained} trained; "
            f"mean loss in nats: {means})"
        )

    def _repr_html_(self) -> str:
        """The conversation with trained tokens coloured: by the one model's loss, or by the
        last model's loss minus the first's; each token's losses on hover. All text escaped."""
        return render_html(self)


def token_losses(
    generator: Generator,
    models: Sequence[str],
    example: dict | list,
    template: Template,
    max_length: int | None = None,
    *,
    source: str = "The conversation",
) -> TokenLosses:
    """Each model's per-token loss on `example` (a row dict or a list of messages).

    `template` is bound to the generator's tokenizer; `max_length` cuts as training cuts.
    Raises ValueError when no token trains (naming `source`) or when a model is a base model of
    its own (whose tokens differ), KeyError for an unknown model (naming the known ones).
    """
    names = list(dict.fromkeys(models))
    if not names:
        raise ValueError('Name at least one model to score, e.g. models=["base"].')
    slots = {name: _slot(generator, name) for name in names}
    shown = preview(template, example, max_length)
    ids = [t.id for t in shown.tokens]
    trained = [t.trained and k > 0 for k, t in enumerate(shown.tokens)]
    if not any(trained):
        raise ValueError(_nothing_trains(source, template, max_length, shown.truncated_trained))
    positions = [k for k, flag in enumerate(trained) if flag]
    host = _host(generator)
    losses = {}
    for name, slot in slots.items():
        scored = iter(forward_losses(host, slot, ids, positions))
        losses[name] = [next(scored) if flag else None for flag in trained]
    return TokenLosses(
        tokens=[t.text for t in shown.tokens],
        token_ids=ids,
        trained=trained,
        losses=losses,
        special=[t.special for t in shown.tokens],
        template=template.name,
        truncated_trained=shown.truncated_trained,
    )


def forward_losses(
    host: ModelHost, slot: str | None, ids: list[int], positions: list[int]
) -> list[float]:
    """One forward pass of adapter `slot` (None: the bare base) over `ids`; the loss in nats
    (float32) of predicting ids[t] from ids[:t], for each t in `positions` (all >= 1)."""
    import torch
    import torch.nn.functional as F

    device = host.model.device
    inputs = torch.tensor([ids], device=device)
    before = torch.tensor([t - 1 for t in positions], device=device)  # logits that predict t
    targets = inputs[0, torch.tensor(positions, device=device)]
    kwargs: dict[str, Any] = {"use_cache": False}
    keeps = _keeps_some_logits(host.model)
    if keeps:  # the LM head runs on the positions scored only: big vocabularies stay cheap
        kwargs["logits_to_keep"] = before
    # the one switch generation uses (PEFT's set_adapter/disable_adapter and the adapter's own
    # biases): a forward pass must see the model a generation sees
    with torch.inference_mode(), host.active(slot) as model:
        logits = model(input_ids=inputs, **kwargs).logits[0]
        logits = logits if keeps else logits[before]
        losses = F.cross_entropy(logits.float(), targets, reduction="none")
    return losses.tolist()


def _keeps_some_logits(model) -> bool:
    """Whether the model's forward takes `logits_to_keep` (transformers' causal LMs do)."""
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _host(generator: Generator) -> ModelHost:
    return generator.base_host  # the one model instance every adapter of "base" runs on


def _slot(generator: Generator, name: str) -> str | None:
    """The PEFT adapter name of contestant `name` on the base model (None for "base")."""
    from .generate import BASE

    contestant = generator.contestant(name)
    if contestant.host != BASE:
        raise ValueError(
            f"{name!r} runs on another base model ({contestant.spec.display_name}), whose tokens "
            'differ; score "base" and the adapters trained on it.'
        )
    return contestant.slot


def _nothing_trains(source: str, template: Template, max_length: int | None, cut: int) -> str:
    if cut:
        return (
            f"{source} has no trained token within max_length {max_length}: all {cut} lie past "
            "it. Raise max_length, or give a shorter conversation."
        )
    return (
        f"{source} has no trained token under template {template.name!r} "
        f"(train_on={template.train_on!r}): give a conversation with an answer that trains, "
        "e.g. a user turn followed by an assistant turn."
    )


# -- the notebook view ------------------------------------------------------------------------
WORSE, BETTER = "var(--jp-error-color1, #d32f2f)", "var(--jp-success-color1, #388e3c)"
LOSS = "var(--jp-warn-color1, #f57c00)"


def render_html(losses: TokenLosses) -> str:
    """Coloured spans of every token (see TokenLosses._repr_html_); escaped, theme colours."""
    models = losses.models
    if len(models) > 1:
        values = losses.difference(models[-1], models[0])
        legend = (
            f"colour: loss of {models[-1]} minus {models[0]}; green where it fell, red where it "
            "rose"
        )
    else:
        values, legend = losses.losses[models[0]], f"colour: loss of {models[0]}"
    scale = max((abs(v) for v in values if v is not None), default=0.0) or 1.0
    spans = [_span(losses, t, values[t], scale, len(models) > 1) for t in range(len(losses.tokens))]
    means = ", ".join(f"{m} {losses.mean(m):.3f}" for m in models)
    head = (
        f"{len(losses.tokens)} tokens, {losses.num_trained} trained; mean loss in nats: {means}. "
        f"{legend} (hover a token for its losses)."
    )
    return (
        '<div style="font-family: var(--jp-code-font-family, monospace); white-space: pre-wrap; '
        'color: var(--jp-ui-font-color1)">'
        f'<div style="font-family: var(--jp-ui-font-family, sans-serif); margin-bottom: 4px">'
        f"{html.escape(head)}</div>{''.join(spans)}</div>"
    )


def _span(losses: TokenLosses, t: int, value: float | None, scale: float, diff: bool) -> str:
    text = html.escape(losses.tokens[t])
    if value is None:
        return f'<span style="opacity: 0.55">{text}</span>'
    colour = (BETTER if value < 0 else WORSE) if diff else LOSS
    share = round(100 * min(abs(value) / scale, 1.0)) if math.isfinite(value) else 100
    title = ", ".join(f"{m} {v[t]:.3f}" for m, v in losses.losses.items()) + " nats"
    return (
        f'<span title="{html.escape(title)}" style="background: color-mix(in srgb, {colour} '
        f'{share}%, transparent); border-radius: 2px">{text}</span>'
    )
