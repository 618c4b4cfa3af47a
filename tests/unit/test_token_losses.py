"""Per-token loss: each model's loss on every trained token of a row, as training sees it."""

from __future__ import annotations

import html
import math
import re

import pytest

from workbench.answers.token_losses import TokenLosses
from workbench.train import TrainConfig

EVIL = "<script>alert(1)</script> & <b>"


def plain_losses(model, ids: list[int]) -> list[float]:
    """Per-token cross-entropy (nats) of a plain transformers forward pass: loss[t] predicts
    ids[t] from ids[:t]; loss[0] is nan (nothing comes before it)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    shifted = F.cross_entropy(logits[:-1], torch.tensor(ids[1:]), reduction="none")
    return [math.nan, *shifted.tolist()]


def assert_close_on_trained(losses: TokenLosses, model: str, expected: list[float]) -> None:
    for t, (got, trained) in enumerate(zip(losses.losses[model], losses.trained)):
        if trained:
            # float32 losses of two computations: relative and absolute tolerances
            assert got == pytest.approx(expected[t], rel=1e-5, abs=1e-4), (model, t)


def test_a_trained_adapter_changes_the_loss_of_trained_tokens_and_base_matches_transformers(
    session, chat_rows, tiny_model_dir
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ds = session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    config = TrainConfig(method="lora", batch_size=2, max_steps=8, learning_rate=5e-3)
    run = session.train(config)
    status = run.wait(timeout=240)
    assert status.state == "finished", status.message + status.traceback_tail

    losses = session.token_losses(0, models=["base", run.name])

    tokenized = session.template.tokenize(ds[0])  # what the trainer trains on
    assert losses.token_ids == tokenized.input_ids
    assert losses.trained == [t > 0 and label != -100 for t, label in enumerate(tokenized.labels)]
    assert 0 < losses.num_trained < len(losses.tokens)  # the user turn is masked
    assert "".join(losses.tokens) == session.template.render(ds[0])
    for t, trained in enumerate(losses.trained):
        for model in ("base", run.name):
            value = losses.losses[model][t]
            assert (value is None) == (not trained), (model, t)
            assert value is None or (math.isfinite(value) and value >= 0)
    changes = [abs(d) for d in losses.difference(run.name, "base") if d is not None]
    assert len(changes) == losses.num_trained and max(changes) > 1e-2
    assert losses.mean(run.name) < losses.mean("base")  # it trained on this very row

    plain = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype="float32").eval()
    assert_close_on_trained(losses, "base", plain_losses(plain, losses.token_ids))
    tuned = PeftModel.from_pretrained(plain, str(run.adapter_path)).eval()
    assert_close_on_trained(losses, run.name, plain_losses(tuned, losses.token_ids))


def test_a_row_number_a_row_dict_and_its_messages_give_the_same_losses(session, chat_rows):
    ds = session.load_dataset(chat_rows)
    by_number = session.token_losses(2)
    by_row = session.token_losses(ds[2], models="base")
    by_messages = session.token_losses(chat_rows[2]["messages"])
    assert by_number.models == ["base"]
    assert by_number.token_ids == by_row.token_ids == by_messages.token_ids
    assert by_number.losses == by_row.losses == by_messages.losses
    assert by_number.rows()[1]["text"] == by_number.tokens[1]
    assert f"{by_number.num_trained} trained" in repr(by_number)


def test_the_notebook_view_escapes_every_text_and_colours_the_difference(session):
    messages = [{"role": "user", "content": EVIL}, {"role": "assistant", "content": EVIL}]
    losses = session.token_losses(messages, models=["base", "base"])  # asked twice, scored once
    assert losses.models == ["base"]
    shown = losses._repr_html_()
    assert set(re.findall(r"<(/?\w+)", shown)) == {"div", "/div", "span", "/span"}  # ours only
    assert EVIL in html.unescape(re.sub(r"<[^>]*>", "", shown))  # the text, escaped, is all there
    two = TokenLosses(
        tokens=["<a>", "x", "y"],
        token_ids=[1, 2, 3],
        trained=[False, True, True],
        losses={"base": [None, 2.0, 1.0], "run-1": [None, 0.5, 3.0]},
    )
    assert two.difference("run-1", "base") == [None, -1.5, 2.0]
    assert two.mean("run-1") == 1.75
    shown = two._repr_html_()
    assert "&lt;a&gt;" in shown and "<a>" not in shown
    assert "--jp-success-color1" in shown and "--jp-error-color1" in shown  # fell / rose
    assert 'title="base 2.000, run-1 0.500 nats"' in shown


def test_bad_input_is_refused_naming_what_is_wrong(session, chat_rows, tiny_model_dir):
    session.load_dataset(chat_rows)
    with pytest.raises(KeyError, match="'nope'.*choose one of: base"):
        session.token_losses(0, models=["base", "nope"])
    with pytest.raises(ValueError, match="at least one model"):
        session.token_losses(0, models=[])
    with pytest.raises(ValueError, match="The conversation has no trained token"):
        session.token_losses([{"role": "user", "content": "Only a question"}])
    with pytest.raises(IndexError, match="Row 7 is out of range"):
        session.token_losses(7)
    with pytest.raises(TypeError, match="row number.*got str"):
        session.token_losses("What is 2+3?")
    with pytest.raises(TypeError, match='"messages"'):
        session.token_losses({"text": "no messages here"})
    session.add_base_model(str(tiny_model_dir), name="other")
    with pytest.raises(ValueError, match="'other' runs on another base model"):
        session.token_losses(0, models=["other"])
    session.set_max_length(8)
    with pytest.raises(ValueError, match="Row 0 has no trained token within max_length 8"):
        session.token_losses(0)
