"""The Jinja sandbox that renders chat templates, as transformers' apply_chat_template does.

Templates come from users and from the Hub, so they are untrusted code: they render in jinja2's
ImmutableSandboxedEnvironment with the same globals and filters transformers provides, so "model"
renders exactly as `tokenizer.apply_chat_template`. Errors name the template line.
"""

from __future__ import annotations

import functools
import json
import re
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


class TemplateError(ValueError):
    """A template does not parse or fails to render; the message names the line."""


class _Sandbox(ImmutableSandboxedEnvironment):
    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # jinja2 returns a silent Undefined here, so `{{ ''.__class__ }}` would render as "";
        # raise instead, so a person sees that the sandbox refused.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )


_GENERATION_SPANS: ContextVar[tuple[list[str], list[tuple[int, int]]] | None] = ContextVar(
    "generation_spans", default=None
)


class _GenerationTracker(jinja2.ext.Extension):
    """Parses `{% generation %}...{% endgeneration %}` and records where its text lands."""

    tags = {"generation"}

    def parse(self, parser: Any) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        call = self.call_method("_track", [])
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _track(self, caller: Any) -> str:
        text = caller()
        tracking = _GENERATION_SPANS.get()
        if tracking is not None:
            blocks, spans = tracking
            start = sum(len(b) for b in blocks)
            spans.append((start, start + len(text)))
        return text


class _Namespace(jinja2.utils.Namespace):
    # As in transformers: a namespace may not hold underscore names (a path to Python internals).
    def __init__(*args: Any, **kwargs: Any) -> None:
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _Namespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _Namespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"a namespace cannot hold the underscore name {name!r}")


class _DictFactory:
    def __call__(self, *args: Any, **kwargs: Any) -> dict:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict:
        return dict.fromkeys(*args, **kwargs)


def _raise_exception(message: str) -> None:
    raise jinja2.TemplateError(message)


def _tojson(x: Any, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


@functools.lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    """The sandbox with transformers' chat-template settings, globals and filters."""
    env = _Sandbox(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_GenerationTracker, jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.globals["dict"] = _DictFactory()
    env.globals["namespace"] = _Namespace
    return env


@functools.lru_cache(maxsize=64)
def compile_template(source: str) -> jinja2.Template:
    """Parse Jinja in the sandbox; a syntax error becomes a TemplateError naming the line."""
    try:
        return environment().from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"Template syntax error on line {e.lineno}: {e.message}") from e


def template_variables(tokenizer: Any) -> dict[str, Any]:
    """The special tokens a template sees (bos_token, eos_token, ...), as apply_chat_template passes."""
    if tokenizer is None:
        return {"bos_token": "", "eos_token": ""}
    variables = {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
    variables.setdefault("bos_token", "")
    variables.setdefault("eos_token", "")
    return variables


# Per-message training flags: Axolotl's "train"/"training", ShareGPT variants' "loss", OpenAI's
# "weight" (0/1), LLaMA-Factory's "loss_weight" (0.0/1.0 in its v1 data). They decide what
# trains (templates.spans), the data layer checks them on load, and they never reach the template.
TRAIN_FLAGS = ("train", "training", "loss", "weight", "loss_weight")


def plain_messages(messages: list[dict]) -> list[dict]:
    """Messages as templates receive them: keys whose value is None dropped, as transformers does,
    and training flags (TRAIN_FLAGS) dropped, so a flag never changes the rendered text."""
    for m in messages:
        if not isinstance(m, dict):
            raise TypeError(f'A message is a {{"role": ..., "content": ...}} dict; got {m!r:.80}.')
    return [
        {k: v for k, v in m.items() if v is not None and k not in TRAIN_FLAGS} for m in messages
    ]


def render(
    source: str,
    messages: list[dict],
    add_generation_prompt: bool,
    tokenizer: Any = None,
    variables: dict[str, Any] | None = None,
) -> str:
    """Render Jinja with the variables Hugging Face chat templates expect."""
    return render_tracked(source, messages, add_generation_prompt, tokenizer, variables)[0]


def render_tracked(
    source: str,
    messages: list[dict],
    add_generation_prompt: bool,
    tokenizer: Any = None,
    variables: dict[str, Any] | None = None,
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans of its `{% generation %}` blocks (if any)."""
    compiled = compile_template(source)
    if variables is None:
        variables = template_variables(tokenizer)
    context = {  # a row's tools and documents come in `variables` (template.row_context)
        "tools": None,
        "documents": None,
        **variables,
        "messages": plain_messages(messages),
        "add_generation_prompt": add_generation_prompt,
    }
    blocks: list[str] = []
    spans: list[tuple[int, int]] = []
    try:
        if not has_generation_blocks(source):
            return compiled.render(context), spans
        with _tracking(blocks, spans):
            for block in compiled.generate(context):
                blocks.append(block)
    except SecurityError as e:
        raise TemplateError(f"The sandbox blocked the template{_line_of(e)}: {e}.") from e
    except jinja2.TemplateError as e:
        raise TemplateError(f"The template failed to render{_line_of(e)}: {e}") from e
    except Exception as e:  # user Jinja can raise anything (TypeError on bad content, ...)
        raise TemplateError(f"The template failed to render{_line_of(e)}: {e!r}") from e
    return "".join(blocks), spans


@contextmanager
def _tracking(blocks: list[str], spans: list[tuple[int, int]]):
    token = _GENERATION_SPANS.set((blocks, spans))
    try:
        yield
    finally:
        _GENERATION_SPANS.reset(token)


GENERATION_MARK = re.compile(r"\{%(-?)\s*(end)?generation\s*(-?)%\}")


def serving_source(source: str) -> str:
    """`source` as a server gets it: each `{% generation %}` mark becomes `{% if true %}` and
    each `{% endgeneration %}` `{% endif %}`, keeping their whitespace control, so it renders
    the same text. The marks only tell training which tokens are the answer (transformers'
    assistant masks); Jinja without that extension, as llama.cpp's, Ollama's importer and
    llama-cpp-python before its PR #2226 read it, fails on "unknown tag 'generation'"."""
    return GENERATION_MARK.sub(
        lambda m: f"{{%{m[1]} {'endif' if m[2] else 'if true'} {m[3]}%}}", source
    )


@functools.lru_cache(maxsize=64)
def has_generation_blocks(source: str) -> bool:
    """Whether the template marks assistant text with `{% generation %}` (then those spans train)."""
    return bool(GENERATION_TAG.search(source))


_STRING_METHODS = frozenset(
    ("split", "rsplit", "startswith", "endswith", "replace", "find", "rfind", "index", "rindex")
    + ("count", "partition", "rpartition", "strip", "lstrip", "rstrip")
    + ("removeprefix", "removesuffix")
)


@functools.lru_cache(maxsize=64)
def tested_strings(source: str) -> frozenset[str]:
    """String constants the template looks for inside values: `'x' in content`, `.split('x')`,
    `.startswith('x')`, `| replace('x', ...)`. A value holding one may be rendered differently."""
    found: set = set()
    nodes = jinja2.nodes
    for node in compile_ast(source).find_all((nodes.Compare, nodes.Call, nodes.Filter)):
        if isinstance(node, nodes.Compare):
            if any(op.op in ("in", "notin") for op in node.ops):
                found.update(_constants([node.expr]))
        elif isinstance(node, nodes.Call):
            if isinstance(node.node, nodes.Getattr) and node.node.attr in _STRING_METHODS:
                found.update(_constants(node.args[:1]))
        elif node.name == "replace":
            found.update(_constants(node.args[:1]))
    return frozenset(s for s in found if isinstance(s, str) and s)


def compile_ast(source: str) -> jinja2.nodes.Template:
    """The parsed template (its syntax tree); a syntax error becomes a TemplateError."""
    try:
        return environment().parse(source)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"Template syntax error on line {e.lineno}: {e.message}") from e


def _constants(args: list) -> list:
    return [a.value for a in args if isinstance(a, jinja2.nodes.Const)]


def _line_of(error: BaseException) -> str:
    tb = error.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" on line {line}" if line else ""
