"""Preference pairs: votes and preference rows as (prompt, chosen, rejected), checked before DPO.

Pairs come from people's votes (PreferenceRecord) or from preference files (prompt, chosen,
rejected). Every shape of row TRL accepts (explicit or implicit prompt, text or messages, a
prompt repeated inside the answers) gives the pair TRL's DPO would build, or a refusal naming
the rows. The checks run before launch, so a run never starts on pairs that cannot train.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import TrainingDataError
from ..templates.template import Template

MIN_PAIRS = 8
ROLES = ("system", "user", "assistant")


@dataclass
class PreferencePairs:
    """Trainable pairs (prompt messages, chosen and rejected answer turns) and what was left out."""

    rows: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    by_pair: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


def as_pairs(records: Iterable[Any], include_ties: bool = False) -> PreferencePairs:
    """Votes, prompt/chosen/rejected dicts, or rows of a loaded preference dataset (messages
    ending with the chosen answer, plus "rejected") as DPO pairs; ties and "both bad" are
    skipped unless asked, so votes and files merge into one list.

    Each row becomes the pair TRL builds from it (see `preference_pair`); rows that cannot
    are refused together in one TrainingDataError naming their numbers (0-based) and why.
    """
    pairs = PreferencePairs()
    skipped: Counter = Counter()
    by_pair: Counter = Counter()
    refused: dict[str, list[int]] = {}
    for number, record in enumerate(records):
        data = record.to_json() if hasattr(record, "to_json") else record
        if not isinstance(data, dict):
            refused.setdefault(f"a row is {type(data).__name__}, not a dict", []).append(number)
            continue
        verdict = data.get("verdict", "chosen")
        if verdict != "chosen" and not include_ties:
            skipped[verdict] += 1
            continue
        try:
            pairs.rows.append(_pair_of(data))
        except ValueError as e:
            refused.setdefault(str(e), []).append(number)
            continue
        if data.get("chosen_model") or data.get("rejected_model"):
            by_pair[f"{data.get('chosen_model')} > {data.get('rejected_model')}"] += 1
    if refused:
        reasons = "; ".join(f"rows {rows[:20]}: {why}" for why, rows in refused.items())
        raise TrainingDataError(
            f"Some preference rows cannot become (prompt, chosen, rejected) pairs: {reasons}. "
            "Fix or remove those rows."
        )
    pairs.skipped, pairs.by_pair = dict(skipped), dict(by_pair)
    return pairs


def _pair_of(data: dict) -> dict[str, list[dict]]:
    """One vote, preference dict or loaded preference row as a pair."""
    if data.get("rejected_prompt"):  # a vote between answers to two diverged conversations
        chosen = _messages(data["prompt"], "prompt") + _side(data["chosen"], "chosen")
        rejected = _messages(data["rejected_prompt"], "rejected_prompt")
        return preference_pair(None, chosen, rejected + _side(data["rejected"], "rejected"))
    if "messages" in data and "chosen" not in data:  # a row of a loaded preference dataset
        if "rejected" not in data:
            raise ValueError("the row has messages but no 'rejected' answer")
        messages = _messages(data["messages"], "messages")
        rejected = _side(data["rejected"], "rejected")
        cut = _answer_start(messages, rejected)
        return preference_pair(messages[:cut], messages[cut:], rejected)
    missing = [k for k in ("chosen", "rejected") if k not in data]
    if missing:
        raise ValueError(
            f"the row has no {' or '.join(repr(k) for k in missing)} "
            f"(keys: {sorted(data)}); a preference row needs chosen and rejected"
        )
    return preference_pair(data.get("prompt"), data["chosen"], data["rejected"], data.get("system"))


def _answer_start(messages: list[dict], rejected: list[dict]) -> int:
    """Where the chosen answer starts in a loaded row's messages: as many turns as the rejected
    answer has, when their roles agree and a non-assistant turn precedes them; else the
    assistant turns at the end."""
    k = len(rejected)
    roles_agree = [m["role"] for m in messages[-k:]] == [m["role"] for m in rejected]
    if 0 < k < len(messages) and messages[-k - 1]["role"] != "assistant" and roles_agree:
        return len(messages) - k
    cut = len(messages)
    while cut > 0 and messages[cut - 1]["role"] == "assistant":
        cut -= 1
    return cut


def preference_pair(
    prompt: str | list[dict] | None,
    chosen: str | list[dict] | dict,
    rejected: str | list[dict] | dict,
    system: str | None = None,
) -> dict[str, list[dict]]:
    """The (prompt, chosen, rejected) messages TRL's DPO builds from one preference row.

    Explicit prompt (text or messages) or implicit (None: the longest shared prefix of chosen
    and rejected, as trl.extract_prompt); a prompt repeated at the head of chosen and rejected
    is taken out, never doubled; text answers become assistant turns. `system` is put first
    when the prompt has no system turn. Raises ValueError saying why a row cannot be a pair.
    """
    if prompt is None and isinstance(chosen, str) and isinstance(rejected, str):
        prompt, chosen, rejected = _shared_text(chosen, rejected)
    chosen, rejected = _side(chosen, "chosen"), _side(rejected, "rejected")
    if prompt is None:
        shared = _shared_turns(chosen, rejected)
        head, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    else:
        head = [_turn("user", prompt)] if isinstance(prompt, str) else _messages(prompt, "prompt")
        head, chosen, rejected = _strip_prompt(head, chosen, rejected)
    if system and not (head and head[0]["role"] == "system"):
        head = [_turn("system", system), *head]
    _check_pair(head, chosen, rejected)
    return {"prompt": head, "chosen": chosen, "rejected": rejected}


def _shared_text(chosen: str, rejected: str) -> tuple[str, str, str]:
    """trl.extract_prompt on texts: the shared start is the prompt (a space before the answer
    stays with the answers)."""
    n = min(len(chosen), len(rejected))
    cut = next((i for i in range(n) if chosen[i] != rejected[i]), None)
    if cut is None:
        cut = max(n - 1, 0)
    elif cut > 0 and chosen[cut - 1] == " ":
        cut -= 1
    if not chosen[:cut].strip():
        raise ValueError("chosen and rejected texts share no prompt and the row has no 'prompt'")
    return chosen[:cut], chosen[cut:], rejected[cut:]


def _shared_turns(chosen: list[dict], rejected: list[dict]) -> int:
    """The length of the shared prefix of two conversations, as trl.extract_prompt takes it:
    never the whole of the shorter one."""
    n = min(len(chosen), len(rejected))
    return next((i for i in range(n) if _key(chosen[i]) != _key(rejected[i])), max(n - 1, 0))


def _strip_prompt(
    prompt: list[dict], chosen: list[dict], rejected: list[dict]
) -> tuple[list[dict], list[dict], list[dict]]:
    """An explicit prompt with answers that may repeat it: the answers without the repetition.

    When both answers carry their conversation, its shared start is the prompt (as TRL's
    maybe_extract_prompt takes it); the prompt field must agree: be its start or its end, or
    end with it (the field adds a system turn). Else one answer that repeats the prompt
    loses the repetition."""
    carries = [bool(side) and side[0]["role"] != "assistant" for side in (chosen, rejected)]
    if all(carries):
        shared = _shared_turns(chosen, rejected)
        head, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
        if _ends_with(head, prompt) or _starts_with(head, prompt):
            return head, chosen, rejected
        if _ends_with(prompt, head):
            return prompt, chosen, rejected
        raise ValueError(
            f"the 'prompt' field is {_show(prompt)}, but chosen and rejected begin with "
            f"{_show(head)}; expected the field to be (the end of) what they share"
        )
    sides = [
        side[len(prompt) :] if carry and _starts_with(side, prompt) else side
        for side, carry in zip((chosen, rejected), carries, strict=True)
    ]
    return prompt, sides[0], sides[1]


def _check_pair(prompt: list[dict], chosen: list[dict], rejected: list[dict]) -> None:
    if not prompt:
        raise ValueError("chosen and rejected share no prompt turns and the row has no 'prompt'")
    if prompt[-1]["role"] == "assistant":
        raise ValueError(
            "the prompt ends with an assistant turn, so chosen and rejected do not answer it "
            "(they differ from a user turn on, or the prompt field holds an answer)"
        )
    for name, side in (("chosen", chosen), ("rejected", rejected)):
        if not side:
            raise ValueError(f"{name} has no answer after the prompt")
        if side[0]["role"] != "assistant" or side[-1]["role"] != "assistant":
            roles = [m["role"] for m in side]
            raise ValueError(
                f"{name} must start and end with an assistant turn after the prompt; its turns "
                f"are {roles} (does the 'prompt' field match the head of chosen and rejected?)"
            )
        if any(m["role"] == "assistant" and not m["content"].strip() for m in side):
            raise ValueError(f"{name} has an empty answer")


def _side(value: Any, where: str) -> list[dict]:
    """An answer: text becomes one assistant turn; a message or list of messages is kept."""
    if isinstance(value, str):
        return [_turn("assistant", value)]
    if isinstance(value, dict):
        value = [value]
    return _messages(value, where)


def _messages(value: Any, where: str) -> list[dict]:
    """A list of role/content messages, checked; extra keys of a message are kept."""
    if isinstance(value, str):
        return [_turn("user", value)]
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where} is {type(value).__name__}; expected text or a list of messages")
    out = []
    for k, message in enumerate(value):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ValueError(f"{where}[{k}] is not a message with 'role' and 'content'")
        if message["role"] not in ROLES:
            raise ValueError(f"{where}[{k}].role is {message['role']!r}; expected one of {ROLES}")
        if not isinstance(message["content"], str):
            kind = type(message["content"]).__name__
            raise ValueError(f"{where}[{k}].content is {kind}; expected text")
        out.append(dict(message))
    return out


def _show(messages: list[dict]) -> str:
    """Turns as "[user 'Name a colour.']" for an error message (content cut at 40 characters)."""
    return "[" + ", ".join(f"{m['role']} {str(m['content'])[:40]!r}" for m in messages) + "]"


def _turn(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def _key(message: dict) -> tuple[str, str]:
    return message["role"], message["content"].strip()


def _starts_with(turns: list[dict], head: list[dict]) -> bool:
    return len(turns) >= len(head) and [_key(m) for m in turns[: len(head)]] == [
        _key(m) for m in head
    ]


def _ends_with(turns: list[dict], tail: list[dict]) -> bool:
    return len(turns) >= len(tail) and [_key(m) for m in turns[len(turns) - len(tail) :]] == [
        _key(m) for m in tail
    ]


def split_pairs(
    rows: list[dict], seed: int = 0, eval_fraction: float = 0.2
) -> tuple[list[dict], list[dict]]:
    """Hold out a seeded fifth of the pairs (at least 2, when there are 10 or more) to measure
    DPO and reward models. Identical pairs (a vote given twice: the same pair_fingerprint) fall
    on one side, so a held-out pair is never one the run trained on."""
    if len(rows) < 10:
        return rows, []
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(
            pair_fingerprint(row["prompt"], row["chosen"], row["rejected"]), []
        ).append(i)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    n_eval, held = max(2, round(len(rows) * eval_fraction)), set()
    for group in order:
        if len(held) >= n_eval:
            break
        if len(held) + len(group) <= len(rows) - 2:  # at least two pairs left to train on
            held.update(group)
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def check_pairs(
    pairs: PreferencePairs,
    template: Template,
    max_length: int,
    max_prompt_length: int,
    method: str = "DPO",
) -> None:
    """Refuse, before launch, too few pairs, identical answers and pairs past the length limits;
    `method` names the training that needs them ("DPO", "A reward model")."""
    if len(pairs) < MIN_PAIRS:
        ties = pairs.skipped.get("tie", 0)
        count_ties = ", or count the ties (include_ties=True)" if ties else ""
        skipped = ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in pairs.skipped.items())
        raise TrainingDataError(
            f"{method} needs at least {MIN_PAIRS} preference pairs; there are {len(pairs)} "
            f"(skipped: {skipped or 'none'}). Vote on more answers or load a preference "
            f"file{count_ties}."
        )
    identical, too_long = [], []
    tokenizer = template.tokenizer
    for i, row in enumerate(pairs.rows):
        if [_key(m) for m in row["chosen"]] == [_key(m) for m in row["rejected"]]:
            identical.append(i)
            continue
        prompt_text = template.render_prompt(row["prompt"])
        prompt_len = len(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
        longest = max(
            len(
                tokenizer(template.render(row["prompt"] + row[k]), add_special_tokens=False)[
                    "input_ids"
                ]
            )
            for k in ("chosen", "rejected")
        )
        if prompt_len > max_prompt_length or longest > max_length:
            too_long.append(i)
    problems = []
    if identical:
        problems.append(
            f"pairs whose two answers are the same (nothing to learn): rows {identical[:20]}"
        )
    if too_long:
        problems.append(
            f"pairs longer than max_prompt_length={max_prompt_length} or max_length={max_length} "
            f"tokens: rows {too_long[:20]}"
        )
    if problems:
        raise TrainingDataError(
            "Some preference pairs cannot train: "
            + "; ".join(problems)
            + ". Remove them or raise the limits."
        )


def pair_fingerprint(prompt: Any, chosen: Any, rejected: Any) -> str:
    """A short hash of one pair as workbench.preferences.pairs.as_pairs gives it (prompt,
    chosen and rejected messages, or text): the same for a vote and the pair a run trained on."""
    sides = [_plain(prompt, "user"), _plain(chosen, "assistant"), _plain(rejected, "assistant")]
    return hashlib.sha1(json.dumps(sides, sort_keys=True).encode()).hexdigest()[:16]


def _plain(value: Any, role: str) -> list[dict]:
    """Messages (role and content only) from messages or a text of `role`."""
    if isinstance(value, str):
        return [{"role": role, "content": value.strip()}]
    return [{"role": m["role"], "content": str(m["content"]).strip()} for m in value]
