"""A generator behind an OpenAI-compatible HTTP endpoint: llama.cpp's server, vLLM, Ollama, ...

Each prompt is one POST to /v1/chat/completions, one after the other, with the API key (when
the server wants one) read from an environment variable the caller names, never stored. A
server that is down, too slow or that answers something other than a chat completion raises
EndpointError with one sentence of what happened and what to do.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..answers.generate import GenerationSettings
from .parse import Cut

if TYPE_CHECKING:
    import httpx

SHOWN_CHARS = 200  # of a bad answer, in an error message


class EndpointError(RuntimeError):
    """The endpoint could not give an answer; the message says why and what to do.
    `answers` holds the answers it gave before failing, in order."""

    def __init__(self, message: str, answers: list[str] | None = None):
        super().__init__(message)
        self.answers = answers or []


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: its URL, the model to ask (None: the first it lists), the
    name of the environment variable that holds its API key, and seconds to wait per answer."""

    url: str
    model: str | None = None
    api_key_env: str | None = None
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"An endpoint URL starts with http:// or https://; got {self.url!r}.")
        if self.timeout <= 0:
            raise ValueError(f"timeout is seconds to wait, above 0; got {self.timeout}.")

    @property
    def name(self) -> str:
        """How candidates record this generator: the URL and the model asked."""
        return f"{self.url} ({self.model})" if self.model else self.url

    @property
    def base_url(self) -> str:
        """The URL up to and with /v1."""
        url = self.url.rstrip("/")
        for tail in ("/chat/completions", "/models"):
            url = url.removesuffix(tail)
        return url if url.endswith("/v1") else f"{url}/v1"

    def generate(
        self,
        prompts: list[str],
        settings: GenerationSettings,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """One answer per prompt, in order; when `stop` is set, the answers made so far. An
        answer the server stopped at max_tokens is a parse.Cut (staged as too long)."""
        import httpx  # imported on first use: it adds a tenth of a second to `import workbench`

        headers = self._headers()
        with httpx.Client(timeout=self.timeout, headers=headers) as client:
            model = self.model or self._first_model(client)
            answers: list[str] = []
            for prompt in prompts:
                if stop is not None and stop.is_set():
                    break
                body = _body(model, prompt, settings)
                try:
                    data = self._call(client, "POST", "/chat/completions", body)
                    answers.append(_content(data, settings.max_new_tokens))
                except EndpointError as e:
                    raise EndpointError(str(e), answers) from None
            return answers

    def _headers(self) -> dict[str, str]:
        if not self.api_key_env:
            return {}
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise EndpointError(
                f"The environment variable {self.api_key_env} holds no API key for {self.url}; "
                "set it before starting, or leave api_key_env out for a server without keys."
            )
        return {"Authorization": f"Bearer {key}"}

    def _first_model(self, client: httpx.Client) -> str:
        data = self._call(client, "GET", "/models")
        try:
            return str(data["data"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise EndpointError(
                f"{self.base_url}/models lists no model; name one: Endpoint(url, model=NAME)."
            ) from None

    def _call(self, client: httpx.Client, method: str, path: str, body: Any = None) -> Any:
        import httpx

        url = self.base_url + path
        try:
            response = client.request(method, url, json=body)
        except httpx.TimeoutException:
            raise EndpointError(
                f"{url} did not answer within {self.timeout:g} s; the server is busy or the model "
                "slow. Give a longer timeout (Endpoint(url, timeout=...)) or ask fewer tokens."
            ) from None
        except httpx.HTTPError as e:
            raise EndpointError(
                f"Cannot reach {url} ({e}). Start the server (llama.cpp's llama-server, vLLM or "
                "Ollama) or check the URL."
            ) from None
        if response.status_code >= 400:
            denied = response.status_code in (401, 403)
            hint = f" Check the key in {self.api_key_env or 'api_key_env'}." if denied else ""
            raise EndpointError(
                f"{url} answered HTTP {response.status_code}: "
                f"{response.text[:SHOWN_CHARS]!r}.{hint}"
            )
        try:
            return response.json()
        except ValueError:
            raise EndpointError(
                f"{url} answered with something that is not JSON: {response.text[:SHOWN_CHARS]!r}. "
                "Is this the URL of an OpenAI-compatible server?"
            ) from None


def _body(model: str, prompt: str, settings: GenerationSettings) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": settings.max_new_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "seed": settings.seed,
    }


def _content(data: Any, max_tokens: int) -> str:
    """The answer of a chat completion; a parse.Cut when the server stopped it at max_tokens."""
    try:
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        raise EndpointError(
            "The endpoint answered JSON that is not a chat completion (no "
            f"choices[0].message.content): {str(data)[:SHOWN_CHARS]!r}."
        )
    if isinstance(choice, dict) and choice.get("finish_reason") == "length":
        return Cut(content, f"the endpoint stopped it at max_tokens ({max_tokens})")
    return content
