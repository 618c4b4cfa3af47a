"""GRPO's reward functions: named in a TrainConfig, built and checked in the runner process.

A reward is named by a spec string, so a config stays JSON and the runner process can build it:
`exact_match` and `contains` (the scorers of workbench.answers.evaluate, against the row's
reference answer), `format=REGEX` (1 when the whole answer matches), `length=N` (0 up to N
completion tokens, then -1 per further N), `reward_model=RUN_OR_FOLDER` (a reward model trained
with method "reward"), or `module:function` for any function `f(prompts, completions, **columns)
-> list[float]` that the runner can import. Every function is wrapped so that raising, the wrong
number of values, None or NaN ends the run naming the function and the first bad value.
"""

from __future__ import annotations

import importlib
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

BUILT_IN = ("exact_match", "contains")
WITH_VALUE = ("format", "length", "reward_model")
NEEDS_REFERENCE = ("exact_match", "contains")
SPEC_HELP = (
    "exact_match, contains, format=REGEX, length=N (completion tokens), "
    "reward_model=RUN_OR_FOLDER, or module:function"
)
SAMPLES_SHOWN = 2


class RewardFunctionError(RuntimeError):
    """A reward function failed in the runner; the message names it and the first bad value."""


@dataclass(frozen=True)
class RewardSpec:
    """One reward as a config names it: its kind (a built-in, or "function") and its value."""

    kind: str
    value: str = ""

    @property
    def text(self) -> str:
        """The spec as written in a config (`format=...`, `module:function`, ...)."""
        if self.kind == "function" or self.kind in BUILT_IN:
            return self.value or self.kind
        return f"{self.kind}={self.value}"

    @property
    def name(self) -> str:
        """The reward's name in metrics.jsonl (`rewards/NAME/mean`) and in error messages."""
        return self.value if self.kind == "function" else self.kind


def parse_reward(text: str) -> RewardSpec:
    """Read one reward spec; ValueError saying what is allowed for anything else."""
    text = str(text).strip()
    if text in BUILT_IN:
        return RewardSpec(text)
    kind, sep, value = text.partition("=")
    if sep and kind.strip() in WITH_VALUE:
        return _valued(kind.strip(), value.strip())
    module, sep, function = text.partition(":")
    if sep and module and function and _dotted(module) and _dotted(function):
        if module == "__main__":
            raise ValueError(notebook_refusal(function))
        return RewardSpec("function", text)
    raise ValueError(f"Unknown reward {text!r}; use one of: {SPEC_HELP}.")


def _valued(kind: str, value: str) -> RewardSpec:
    if not value:
        raise ValueError(f"The reward {kind}= needs a value after '=' ({SPEC_HELP}).")
    if kind == "format":
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"format={value!r} is not a valid regular expression: {e}.") from e
    if kind == "length" and not (value.isdigit() and int(value) > 0):
        raise ValueError(f"length= takes a positive number of tokens; got {value!r}.")
    return RewardSpec(kind, value)


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


def notebook_refusal(function: str) -> str:
    """Why a function defined in the notebook cannot be a reward, and how to make it one."""
    return textwrap.dedent(
        f"""\
        The reward function {function} is defined in the notebook, but training runs in its own
        process, which cannot see the notebook's functions. Put it in a file next to the notebook,
        for example my_rewards.py:

            def {function}(prompts, completions, **columns):
                return [1.0 if "..." in answer else 0.0 for answer in completions]

        and name it as rewards=["my_rewards:{function}"]."""
    )


def spec_of(reward: Any) -> str:
    """A reward as its spec string: strings as they are, an importable function as
    "module:function"; a notebook function or a lambda raises ValueError saying what to do."""
    if isinstance(reward, str):
        return parse_reward(reward).text
    if not callable(reward):
        raise ValueError(f"A reward is a spec ({SPEC_HELP}) or a function; got {reward!r}.")
    module = getattr(reward, "__module__", None) or "__main__"
    qualname = getattr(reward, "__qualname__", None) or type(reward).__name__
    if module == "__main__":
        raise ValueError(notebook_refusal(getattr(reward, "__name__", qualname)))
    if "<" in qualname:  # a lambda or a function defined inside another
        raise ValueError(
            f"The reward {module}:{qualname} cannot be imported by name (a lambda, or a function "
            "defined inside another); define it at the top level of its module."
        )
    return parse_reward(f"{module}:{qualname}").text


def as_specs(rewards: Any, weights: Any) -> tuple[list[str], list[float]]:
    """TrainConfig's rewards as spec strings and its weights as floats (ValueError naming the
    field); one reward may be given alone, and importable functions by themselves."""
    if isinstance(rewards, str) or callable(rewards):
        rewards = [rewards]
    try:
        specs = [spec_of(r) for r in rewards]
    except ValueError as e:
        raise ValueError(f"rewards: {e}") from None
    try:
        numbers = [float(w) for w in weights]
    except (TypeError, ValueError):
        raise ValueError(f"reward_weights must be numbers; got {weights!r}.") from None
    return specs, numbers


def check_rewards(specs: Sequence[str], weights: Sequence[float], grpo: bool) -> None:
    """ValueError, naming the field, for an unknown spec, no reward for GRPO, or weights that
    do not match the rewards one to one."""
    for spec in specs:
        try:
            parse_reward(spec)
        except ValueError as e:
            raise ValueError(f"rewards: {e}") from None
    if grpo and not specs:
        raise ValueError(
            "GRPO needs at least one reward function, e.g. rewards=['exact_match'] "
            "(the answer equals the row's reference)."
        )
    if weights and len(weights) != len(specs):
        raise ValueError(
            f"reward_weights has {len(weights)} weights for {len(specs)} rewards; give one "
            "weight per reward, or none for 1 each."
        )
    if not all(math.isfinite(w) for w in weights):
        raise ValueError(f"reward_weights must be finite numbers; got {list(weights)}.")


def needs_reference(specs: Sequence[str]) -> list[str]:
    """The rewards among `specs` that compare answers with the row's reference."""
    return [s for s in specs if parse_reward(s).kind in NEEDS_REFERENCE]


# -- in the runner process --------------------------------------------------------------------


def build_rewards(
    specs: Sequence[str], load_reward_model: Callable[[str], Any], samples: Samples | None = None
) -> list[Callable]:
    """The checked reward functions of `specs`, for GRPOTrainer (in the runner process).

    `load_reward_model(value)` gives a loaded reward model (workbench.train.reward_model.RewardModel)
    for a `reward_model=` spec. Raises RewardFunctionError when a function cannot be imported.
    """
    functions = []
    for text in specs:
        spec = parse_reward(text)
        if spec.kind == "reward_model":
            function = _reward_model_reward(load_reward_model(spec.value))
        else:
            function = _function_of(spec)
        functions.append(checked(spec.name, function, samples))
    return functions


def _function_of(spec: RewardSpec) -> Callable:
    if spec.kind in BUILT_IN:
        return _scorer_reward(spec.kind)
    if spec.kind == "format":
        pattern = re.compile(spec.value, re.DOTALL)
        return lambda completions, **_: [
            float(bool(pattern.fullmatch(c.strip()))) for c in completions
        ]
    if spec.kind == "length":
        return _length_penalty(int(spec.value))
    return import_function(spec.value)


def import_function(target: str) -> Callable:
    """The function named "module:function" (RewardFunctionError, naming it, when it is not there)."""
    module_name, _, qualname = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as e:  # ImportError, AttributeError, or the module's own error
        raise RewardFunctionError(
            f"The reward function {target} cannot be imported in the training process "
            f"({type(e).__name__}: {e}). Put it in a .py file in the folder the notebook runs in, "
            "or in an installed package, and check the name after ':'."
        ) from e
    if not callable(found):
        raise RewardFunctionError(
            f"The reward {target} is not a function ({type(found).__name__})."
        )
    return found


def _scorer_reward(name: str) -> Callable:
    from ..answers.evaluate import SCORERS

    scorer = SCORERS[name]

    def reward(completions, reference, **_):
        rows = [{"messages": [{"role": "assistant", "content": r}]} for r in reference]
        return [float(scorer(row, c)) for row, c in zip(rows, completions)]

    return reward


def _length_penalty(limit: int) -> Callable:
    def reward(completions, completion_ids=None, **_):
        lengths = [len(ids) for ids in completion_ids] if completion_ids else map(len, completions)
        return [-max(0, n - limit) / limit for n in lengths]

    return reward


def _reward_model_reward(model) -> Callable:
    def reward(prompts, completions, **_):
        return model.score_pairs(list(prompts), list(completions))

    return reward


def checked(name: str, function: Callable, samples: Samples | None = None) -> Callable:
    """`function` as GRPOTrainer calls it, with answers as text, and every value checked.

    Raising, the wrong number of values, None or a non-finite value raise RewardFunctionError
    naming `name`, the completion and the value.
    """

    def reward(prompts, completions, **columns):
        texts = [_text(c) for c in completions]
        try:
            values = function(prompts=prompts, completions=texts, **columns)
        except RewardFunctionError:
            raise
        except Exception as e:
            raise RewardFunctionError(
                f"The reward function {name} raised {type(e).__name__}: {e}. The log has the "
                "traceback."
            ) from e
        values = _checked_values(name, values, texts)
        if samples is not None:
            samples.record(name, prompts, texts, values)
        return values

    reward.__name__ = name  # GRPOTrainer names the metrics rewards/NAME/mean after it
    return reward


def _checked_values(name: str, values: Any, texts: list[str]) -> list[float]:
    try:
        values = list(values)
    except TypeError:
        raise RewardFunctionError(
            f"The reward function {name} returned {values!r:.80}, not a list of numbers."
        ) from None
    if len(values) != len(texts):
        raise RewardFunctionError(
            f"The reward function {name} returned {len(values)} values for {len(texts)} "
            "completions; it must return one number per completion."
        )
    out = []
    for i, value in enumerate(values):
        number = _number(value)
        if number is None:
            raise RewardFunctionError(
                f"The reward function {name} returned {value!r} for completion {i} "
                f"({texts[i][:80]!r}); every reward must be a finite number."
            )
        out.append(number)
    return out


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(completion: Any) -> str:
    """A completion as text: GRPOTrainer hands conversational ones as a list of messages."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


class Samples:
    """The latest batch of completions and each reward's values, printed to the run log."""

    def __init__(self) -> None:
        self.prompts: list = []
        self.completions: list[str] = []
        self.values: dict[str, list[float]] = {}

    def record(self, name: str, prompts: list, completions: list[str], values: list[float]) -> None:
        if completions != self.completions:
            self.prompts, self.completions, self.values = list(prompts), completions, {}
        self.values[name] = values

    def lines(self, step: int, count: int = SAMPLES_SHOWN) -> list[str]:
        """A few completions of the latest batch with each reward, one line each."""
        out = []
        for i in range(min(count, len(self.completions))):
            prompt = _prompt_text(self.prompts[i])
            rewards = ", ".join(f"{n}={v[i]:.3g}" for n, v in self.values.items())
            out.append(
                f"[workbench] step {step} sample {i + 1}: {prompt[-120:]!r} -> "
                f"{self.completions[i][:200]!r} ({rewards})"
            )
        return out


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list):
        return str(prompt[-1].get("content", "")) if prompt else ""
    return str(prompt)
