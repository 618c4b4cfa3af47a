"""The parity check of every export: the reference, what rounding may move, and refusals."""

from __future__ import annotations

import pytest

from tests.unit.test_export import SHORT, leftovers
from workbench.export import Parity, ParityError
from workbench.export import merged as merged_module


def test_the_reference_is_the_workbenchs_answer_and_the_answers_own_logits(tuned, tmp_path):
    """More probes than one generation batch: each answer is session.generate's, and the logits
    kept are the full forward's at the answer's positions (prompt-wide logits are never made)."""
    import torch

    from workbench.export import parity

    prompts = [[{"role": "user", "content": f"What is {i} times 3?"}] for i in range(6)]
    assert len(prompts) > parity.PROBE_BATCH
    model, tokenizer = tuned.generator.model, tuned.generator.tokenizer
    ref = parity.reference(model, tokenizer, tuned.template, prompts, SHORT, tmp_path / "ref")

    assert ref.answers == tuned.generate(prompts, model="base", max_new_tokens=SHORT)
    for k, (ids, start) in enumerate(zip(ref.ids, ref.starts)):
        with torch.inference_mode():
            full = model(input_ids=torch.tensor([ids])).logits[0, start:]
        torch.testing.assert_close(ref.expected(k), full)


def test_a_differing_export_fails_naming_the_prompt_and_writes_nothing(
    tuned, tmp_path, monkeypatch
):
    import torch

    real = merged_module.merge

    def damaged(peft):
        model = real(peft)
        with torch.no_grad():
            model.lm_head.weight.mul_(-1)  # tied: the embedding flips too
        return model

    monkeypatch.setattr(merged_module, "merge", damaged)
    out = tmp_path / "merged"
    with pytest.raises(ParityError, match=r"First differing prompt 'What is \d+ plus \d+\?'"):
        tuned.export_model("run-1", out, max_new_tokens=SHORT)
    assert leftovers(out) == []


def test_answers_that_part_at_a_near_tie_do_not_refuse_a_correct_export(tuned, tmp_path):
    """Long answers of the random tiny model, whose logits are near ties: F16 rounding tips
    some greedy choices. The export is correct, so it is written, and each parting is told
    with the adapter's own margin there (it was refused: "3/4 greedy answers ... FAILED")."""
    export = tuned.export_model("run-1", tmp_path / "gguf", format="gguf", max_new_tokens=48)
    parity = export.parity
    assert parity.passed and parity.max_logit_diff <= parity.tolerance
    assert parity.agree + len(parity.partings) == parity.probes
    for parting in parity.partings:
        assert abs(parting["margin"]) <= parity.tolerance
        assert f"probe {parting['probe']} by" in parity.line()


@pytest.mark.parametrize(
    ("diff", "margins", "passed"),
    [
        (0.03, [0.01], True),  # F16 rounding tipped a near tie: reported, not refused
        (0.03, [], True),
        (0.03, [3.0], False),  # the adapter was sure of its token: a real difference
        (0.5, [], False),  # logits moved more than F16 rounding moves them: wrong weights
    ],
)
def test_parity_refuses_only_what_rounding_cannot_explain(diff, margins, passed):
    from workbench.export import parity

    partings = [{"probe": 7, "margin": m} for m in margins]
    result = Parity("GGUF F16", 8, 8 - len(partings), diff, True, partings=partings)
    result.tolerance = parity.tolerance("f16")
    assert result.passed is passed
    assert ("FAILED" in result.line()) is not passed


def test_each_tensor_type_gets_its_own_tolerance():
    from workbench.export.parity import tolerance

    assert tolerance("float32") < tolerance("f16") < tolerance("bf16") <= tolerance("q8_0")
    assert tolerance("float32", "bfloat16") == tolerance("bf16")  # a GPU's compute dtype
