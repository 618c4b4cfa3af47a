"""Every shape of preference row TRL accepts becomes the (prompt, chosen, rejected) TRL builds,
never with the prompt twice; rows that cannot be pairs are refused by number."""

from __future__ import annotations

import json

import pytest

from workbench.data.errors import TrainingDataError
from workbench.preferences.pairs import as_pairs, preference_pair
from workbench.preferences.records import PreferenceRecord


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict:
    return {"role": "system", "content": text}


Q = "Name a primary colour."
PROMPT_REPEATED_ROW = {
    "prompt": Q,
    "chosen": [user(Q), assistant("Red.")],
    "rejected": [user(Q), assistant("Purple.")],
}
PROMPT_ONCE_PAIR = {
    "prompt": [user(Q)],
    "chosen": [assistant("Red.")],
    "rejected": [assistant("Purple.")],
}


def trl_pair(row: dict) -> dict:
    """What TRL's own maybe_extract_prompt makes of a row, with text turned into messages."""
    from trl.data_utils import maybe_extract_prompt

    got = maybe_extract_prompt(dict(row))
    return {
        "prompt": [user(got["prompt"])] if isinstance(got["prompt"], str) else got["prompt"],
        "chosen": [assistant(got["chosen"])] if isinstance(got["chosen"], str) else got["chosen"],
        "rejected": (
            [assistant(got["rejected"])] if isinstance(got["rejected"], str) else got["rejected"]
        ),
    }


def pair(row: dict) -> dict:
    return as_pairs([row]).rows[0]


def test_a_prompt_repeated_in_chosen_and_rejected_gives_the_user_turn_once():
    assert pair(PROMPT_REPEATED_ROW) == PROMPT_ONCE_PAIR
    assert pair(PROMPT_REPEATED_ROW) == trl_pair(PROMPT_REPEATED_ROW)


def test_a_message_list_prompt_repeated_in_both_answers_is_not_doubled():
    row = {**PROMPT_REPEATED_ROW, "prompt": [user(Q)]}
    assert pair(row) == PROMPT_ONCE_PAIR  # TRL would put the user turn twice here


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": Q, "chosen": "Red.", "rejected": "Purple."},  # standard, explicit prompt
        {"prompt": [user(Q)], "chosen": [assistant("Red.")], "rejected": [assistant("Purple.")]},
        {"chosen": [user(Q), assistant("Red.")], "rejected": [user(Q), assistant("Purple.")]},
        {"prompt": Q, "chosen": [assistant("Red.")], "rejected": [assistant("Purple.")]},
        {"prompt": Q, "chosen": assistant("Red."), "rejected": assistant("Purple.")},
        {"prompt": Q, "chosen": [user(Q), assistant("Red.")], "rejected": "Purple."},
    ],
    ids=["text", "messages", "implicit", "text-prompt-messages", "one-message", "one-side-repeats"],
)
def test_every_form_of_the_same_pair_gives_the_same_pair(row):
    assert pair(row) == PROMPT_ONCE_PAIR


def test_implicit_text_prompt_splits_where_trl_splits():
    row = {"chosen": "The sky is blue.", "rejected": "The sky is green."}
    assert pair(row) == {
        "prompt": [user("The sky is")],
        "chosen": [assistant(" blue.")],
        "rejected": [assistant(" green.")],
    }
    assert pair(row) == trl_pair(row)


def test_implicit_conversations_share_their_longest_prefix_as_trl():
    row = {
        "chosen": [system("Be brief."), user("Hi"), assistant("Hello"), user(Q), assistant("Red.")],
        "rejected": [
            system("Be brief."),
            user("Hi"),
            assistant("Hello"),
            user(Q),
            assistant("Blue"),
        ],
    }
    assert pair(row) == trl_pair(row)
    assert pair(row)["prompt"][-1] == user(Q) and pair(row)["chosen"] == [assistant("Red.")]


def test_a_first_question_prompt_with_whole_conversations_takes_their_shared_turns():
    turns = [user(Q), assistant("Red."), user("Another?")]
    row = {
        "prompt": Q,
        "chosen": turns + [assistant("Blue.")],
        "rejected": turns + [assistant("No.")],
    }
    assert pair(row) == {
        "prompt": turns,
        "chosen": [assistant("Blue.")],
        "rejected": [assistant("No.")],
    }
    assert pair(row) == trl_pair(row)


def test_system_turns_go_first_in_the_prompt():
    with_system = {**PROMPT_ONCE_PAIR, "prompt": [system("Be brief."), user(Q)]}
    assert pair({**PROMPT_REPEATED_ROW, "system": "Be brief."}) == with_system
    repeated = {  # the prompt field holds only the question; the answers carry the system turn
        "prompt": Q,
        "chosen": [system("Be brief."), user(Q), assistant("Red.")],
        "rejected": [system("Be brief."), user(Q), assistant("Purple.")],
    }
    assert pair(repeated) == with_system
    fuller = {
        "prompt": [system("Be brief."), user(Q)],
        "chosen": PROMPT_REPEATED_ROW["chosen"],
        "rejected": PROMPT_REPEATED_ROW["rejected"],
    }
    assert pair(fuller) == with_system


def test_multi_turn_answers_are_kept_whole():
    chosen = [assistant("Let me think."), user("Go on."), assistant("Red.")]
    rejected = [assistant("Hmm."), user("Go on."), assistant("Purple.")]
    assert pair({"prompt": Q, "chosen": chosen, "rejected": rejected}) == {
        "prompt": [user(Q)],
        "chosen": chosen,
        "rejected": rejected,
    }


def test_extra_keys_of_messages_are_kept():
    thought = {**assistant("Red."), "reasoning_content": "red is primary"}
    got = pair({"prompt": Q, "chosen": [user(Q), thought], "rejected": [user(Q), assistant("No")]})
    assert got["chosen"] == [thought]


def test_votes_become_pairs_and_diverged_conversations_share_their_common_start():
    vote = PreferenceRecord.create(Q, "Red.", "Purple.")
    assert as_pairs([vote]).rows == [PROMPT_ONCE_PAIR]
    a = [user("Hi"), assistant("Hello!"), user(Q)]
    b = [user("Hi"), assistant("Hey."), user(Q)]
    diverged = PreferenceRecord.from_vote(
        a, ("run-1", "Red."), ("base", "Purple."), "A", b_prompt=b
    )
    assert as_pairs([diverged]).rows == [
        {
            "prompt": [user("Hi")],
            "chosen": [assistant("Hello!"), user(Q), assistant("Red.")],
            "rejected": [assistant("Hey."), user(Q), assistant("Purple.")],
        }
    ]


def test_loaded_rows_read_back_as_the_pair_they_were_loaded_from(session, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(PROMPT_REPEATED_ROW) + "\n")
    loaded = session.load_dataset(path)
    assert loaded[0]["messages"] == [user(Q), assistant("Red.")]
    assert loaded[0]["rejected"] == [assistant("Purple.")]
    assert as_pairs(loaded.rows(range(len(loaded)))).rows == [PROMPT_ONCE_PAIR]


def test_a_stored_row_with_answers_of_different_lengths_splits_at_the_answers():
    row = {
        "messages": [user(Q), assistant("Red."), assistant("It is primary.")],
        "rejected": [assistant("Purple.")],
    }
    assert pair(row) == {
        "prompt": [user(Q)],
        "chosen": [assistant("Red."), assistant("It is primary.")],
        "rejected": [assistant("Purple.")],
    }


BAD_ROWS = {
    "no shared prompt": (
        {"chosen": [user("A?"), assistant("a")], "rejected": [user("B?"), assistant("b")]},
        "share no prompt",
    ),
    "prompt mismatch": (
        {
            "prompt": "Other?",
            "chosen": PROMPT_REPEATED_ROW["chosen"],
            "rejected": PROMPT_REPEATED_ROW["rejected"],
        },
        "the 'prompt' field is [user 'Other?'], but chosen and rejected begin with [user",
    ),
    "empty answer": (
        {"prompt": Q, "chosen": "Red.", "rejected": "  "},
        "rejected has an empty answer",
    ),
    "rejected ends with a user turn": (
        {"prompt": Q, "chosen": "Red.", "rejected": [assistant("Purple."), user("Why?")]},
        "rejected must start and end with an assistant turn",
    ),
    "no rejected": ({"prompt": Q, "chosen": "Red."}, "no 'rejected'"),
    "unknown role": (
        {"prompt": [{"role": "narrator", "content": Q}], "chosen": "a", "rejected": "b"},
        "prompt[0].role is 'narrator'",
    ),
    "content not text": (
        {"prompt": Q, "chosen": [{"role": "assistant", "content": 3}], "rejected": "b"},
        "chosen[0].content is int",
    ),
    "text without a shared start": ({"chosen": "Red.", "rejected": "Blue."}, "share no prompt"),
    "prompt ends with an answer": (
        {"prompt": [user(Q), assistant("Re")], "chosen": "d.", "rejected": "d!"},
        "prompt ends with an assistant turn",
    ),
}


@pytest.mark.parametrize("row, reason", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_row_that_cannot_be_a_pair_is_refused_by_number_and_reason(row, reason):
    good = {"prompt": Q, "chosen": "Red.", "rejected": "Purple."}
    with pytest.raises(TrainingDataError) as caught:
        as_pairs([good, row, good, row])
    message = str(caught.value)
    assert "rows [1, 3]" in message and reason in message


def test_every_bad_row_is_named_at_once():
    rows = [row for row, _ in BAD_ROWS.values()]
    with pytest.raises(TrainingDataError) as caught:
        as_pairs(rows)
    for number in range(len(rows)):
        assert f"rows [{number}]" in str(caught.value)


def test_preference_pair_takes_the_parts_apart():
    assert (
        preference_pair(Q, PROMPT_REPEATED_ROW["chosen"], PROMPT_REPEATED_ROW["rejected"])
        == PROMPT_ONCE_PAIR
    )
    assert preference_pair(None, "The sky is blue.", "The sky is red.")["prompt"] == [
        user("The sky is")
    ]
