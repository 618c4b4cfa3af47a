"""Training memory: the chunked loss equals transformers' loss, runs record their peak memory,
and the launcher's estimate holds against measured peaks."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from workbench.train import TrainConfig
from workbench.train.runner.collate import FlatCollator, PaddedCollator, TokenCounter, packed_blocks


def _random_batch(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    batch, length, hidden, vocab = 3, 17, 8, 50
    states = torch.randn(batch, length, hidden, requires_grad=True)
    labels = torch.randint(0, vocab, (batch, length))
    labels[:, :4] = -100  # prompts
    labels[1, 10:] = -100  # padding
    return states, labels, torch.nn.Linear(hidden, vocab), vocab


def _grads(*tensors):
    found = [t.grad.clone() for t in tensors]
    for t in tensors:
        t.grad = None
    return found


@pytest.mark.parametrize("wrapped", [False, True], ids=["linear_head", "wrapped_head"])
@pytest.mark.parametrize("items", [None, 40], ids=["batch_mean", "accumulation"])
def test_chunked_loss_equals_transformers_on_random_states(wrapped, items):
    """Same value and gradients as ForCausalLMLoss on the full logits, over several chunks; a
    head that is not a plain Linear (a LoRA-wrapped lm_head) takes the recomputing path."""
    import torch
    from transformers.loss.loss_utils import ForCausalLMLoss

    from workbench.train.runner.loss import causal_lm_loss

    states, labels, head, vocab = _random_batch()
    count = None if items is None else torch.tensor(items)
    expected = ForCausalLMLoss(head(states), labels, vocab, num_items_in_batch=count)
    expected.backward()
    want = _grads(states, head.weight, head.bias)
    module = torch.nn.Sequential(head) if wrapped else head
    got = causal_lm_loss(states, labels, module, count, chunk=5)
    got.backward()
    torch.testing.assert_close(got, expected)  # float32: relative and absolute tolerances
    for mine, theirs in zip(_grads(states, head.weight, head.bias), want):
        torch.testing.assert_close(mine, theirs)


def test_chunked_loss_without_gradients_is_the_same_value():
    import torch
    from transformers.loss.loss_utils import ForCausalLMLoss

    from workbench.train.runner.loss import causal_lm_loss

    states, labels, head, vocab = _random_batch(1)
    with torch.no_grad():
        got = causal_lm_loss(states, labels, head, chunk=4)
        torch.testing.assert_close(got, ForCausalLMLoss(head(states), labels, vocab))


def _batches(session, chat_rows) -> dict:
    """The three batchings of the runner, over the template's token ids and labels."""
    import datasets

    rows = [session.template.tokenize(r) for r in chat_rows * 2]
    features = [{"input_ids": r.input_ids, "labels": r.labels} for r in rows]
    pad = session.template.tokenizer.pad_token_id
    blocks = packed_blocks(datasets.Dataset.from_list(features), max_length=64)
    return {
        "padded": PaddedCollator(TokenCounter(), pad)(features),
        "padding_free": FlatCollator(TokenCounter(), 64, pad)(features),
        "packed": FlatCollator(TokenCounter(), 64, pad)(list(blocks)),
    }


def _trainer(model, tmp_path, chunked: bool):
    from transformers import Trainer, TrainingArguments

    from workbench.train.runner.loss import ChunkedLoss

    cls = type("ChunkedTrainer", (ChunkedLoss, Trainer), {}) if chunked else Trainer
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    return cls(model=model, args=args)


@pytest.mark.parametrize(
    "model_dir, targets",
    [
        ("tiny_model_dir", "all-linear"),
        ("tiny_model_dir", ["q_proj", "v_proj", "lm_head"]),
        pytest.param("default_model_dir", "all-linear", marks=pytest.mark.slow),
    ],
    ids=["tiny", "tiny_lm_head_lora", "embedded"],
)
def test_chunked_loss_equals_transformers_on_a_real_batch(
    request, session, chat_rows, tmp_path, model_dir, targets
):
    """The Trainer's loss and the adapter's gradients, for padded, padding-free and packed
    batches with a LoRA adapter (lm_head too, when targeted): the tiny model, and the embedded."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from workbench.train.runner.loss import loss_parts

    base = AutoModelForCausalLM.from_pretrained(str(request.getfixturevalue(model_dir)))
    base.config.use_cache = False
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets)
    model = get_peft_model(base, lora)
    for param in model.parameters():
        if param.requires_grad:  # LoRA B starts at zero: give every adapter weight a gradient
            torch.nn.init.normal_(param, std=0.02)
    _, head = loss_parts(model)  # the chunked path applies: it is what this test compares
    assert (type(head) is torch.nn.Linear) == (targets == "all-linear")
    plain, chunked = _trainer(model, tmp_path, False), _trainer(model, tmp_path, True)
    trained = [p for p in model.parameters() if p.requires_grad]
    for name, batch in _batches(session, chat_rows).items():
        items = batch["labels"][:, 1:].ne(-100).sum() * 2  # as if one of two accumulated batches
        for count in (None, items):
            expected = plain.compute_loss(model, dict(batch), num_items_in_batch=count)
            expected.backward()
            want = _grads(*trained)
            got = chunked.compute_loss(model, dict(batch), num_items_in_batch=count)
            got.backward()
            # float32 tolerances (relative and absolute, torch.testing's): another summation
            # order moved the packed loss 1.0e-5 of 1.7 on a machine of this kind
            torch.testing.assert_close(got, expected, msg=name)
            for mine, theirs in zip(_grads(*trained), want):
                torch.testing.assert_close(mine, theirs, msg=name)


def test_every_run_records_its_peak_memory(session, chat_rows):
    """A real short run: each metrics record and the status carry the runner's peak memory."""
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    run = session.train(TrainConfig(method="lora", batch_size=2, max_steps=3, save_steps=5))
    status = run.wait(timeout=240)
    assert status.state == "finished", status.message + status.traceback_tail
    records = [m for m in run.metrics if "loss" in m]
    assert len(records) == 3
    for record in records:
        assert 0.1 < record["peak_rss_gb"] < 64  # a real process: more than the interpreter
        assert record["peak_memory_gb"] == record.get("peak_gpu_reserved_gb", record["peak_rss_gb"])
    assert records[-1]["peak_rss_gb"] >= records[0]["peak_rss_gb"]  # a peak never falls
    assert status.progress.peak_memory_gb >= records[-1]["peak_memory_gb"]
    assert status.progress.tokens_per_s > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [
        dict(method="lora", batching="padded", batch_size=1, max_length=256),
        dict(method="qlora", batching="packed", batch_size=8, max_length=256),
    ],
    ids=["lora_padded_1x256", "qlora_packed_8x256"],
)
def test_the_estimate_holds_against_the_measured_peak(tmp_path, default_model_dir, settings):
    """The launcher's estimate is within 25% of the runner's measured peak (embedded model)."""
    import workbench as wb
    from workbench import demo_data

    s = wb.Session.open(tmp_path / "ws")
    try:
        s.load_dataset(demo_data.generate(200, seed=3))
        s.set_max_length(settings["max_length"])
        # keep_set off: the estimate is of the training steps, not of the keep answers at the end
        # two steps: the optimizer state exists from the first, each batch is as long (packed)
        config = TrainConfig(max_steps=2, save_steps=100, keep_set="off", **settings)
        estimate = s.estimate(config)
        run = s.train(config)
        status = wait_for(lambda: run.status if not run.status.active else None, timeout=900)
        assert status.state == "finished", status.message
        measured = status.progress.peak_memory_gb
        assert abs(estimate.total_gb - measured) <= 0.25 * measured, (estimate, measured)
    finally:
        s.close()
