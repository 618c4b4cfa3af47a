"""Synthetic data: candidates parsed, filtered and staged; only accepted ones become rows."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.parquet as pq
import pytest

import workbench as wb
from workbench import demo_data
from workbench.answers.model_host import Continuation
from workbench.persist import read_jsonl
from workbench.synthesis import Endpoint, EndpointError, SynthesisError

ROWS = [
    ("Name three primary colours.", "Red, yellow and blue."),
    ("What is the capital city of France?", "Paris."),
    ("Translate 'good morning' into Spanish.", "Buenos días."),
    ("Write a haiku about the first snow of winter.", "Quiet flakes descend / ..."),
    ("Explain in one sentence why the sky looks blue.", "Air scatters blue light most."),
    ("Give an antonym of the word 'generous'.", "Stingy."),
    ("How many legs does a spider have?", "Eight."),
    ("Sort these numbers from small to large: 9, 2, 7", "2, 7, 9"),
]


def chat(prompt: str, answer: str) -> dict:
    return {
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    }


def asked(prompt: str, answer: str) -> str:
    return f"### Instruction:\n{prompt}\n### Response:\n{answer}"


def scripted(answers: list[str]):
    """A generator function that answers with `answers` in turn, and counts its prompts."""
    seen: list[str] = []

    def fake(prompts: list[str]) -> list[str]:
        start = len(seen)
        seen.extend(prompts)
        return answers[start : start + len(prompts)]

    fake.seen = seen
    return fake


@pytest.fixture
def grown(session):
    session.load_dataset([chat(p, a) for p, a in ROWS])
    return session


# -- the filters -------------------------------------------------------------------------------
PLANTED = [
    ("duplicate", asked(*ROWS[1])),  # a row of the dataset, verbatim
    ("near_duplicate", asked("what is the capital city of france", "PARIS")),  # case, punctuation
    ("similar", asked("What is the capital city of Germany?", "Berlin.")),  # one word changed
    ("similar", asked("Name three primary colours, please.", "Red, yellow, blue.")),  # seed + word
    ("duplicate", asked(*ROWS[0])),  # the seed verbatim
    (None, asked("Describe how a bicycle chain transfers power to the wheel.", "It links...")),
    (
        "duplicate",
        asked("Describe how a bicycle chain transfers power to the wheel.", "It links..."),
    ),
    (
        "near_duplicate",
        asked("Describe how a bicycle chain transfers power to the wheel", "it links"),
    ),
    ("similar", asked("Describe how a bicycle chain transfers power to a wheel?", "Chain.")),
    (None, asked("List four animals that hibernate through the cold season.", "Bears, bats...")),
    ("empty_turn", asked("Write nothing at all.", "")),
    ("malformed", "I cannot help with that."),
]


def test_the_filter_catches_every_planted_duplicate_and_look_alike(grown):
    fake = scripted([text for _, text in PLANTED])
    result = grown.synthesize(seed_rows=[0, 1, 2], n=len(PLANTED), generator=fake, batch_size=5)
    verdicts = [c.verdict.dropped for c in grown.candidates]
    assert verdicts == [reason for reason, _ in PLANTED]
    assert result.asked == result.answered == len(PLANTED)
    assert result.parsed == len(PLANTED) - 1 and result.kept == 2
    assert result.dropped == {
        "malformed": 1,
        "empty_turn": 1,
        "duplicate": 3,
        "near_duplicate": 2,
        "similar": 3,
    }
    notes = [c.verdict.note for c in grown.candidates]
    assert notes[0] == "same as row 1" and "row 1" in notes[1] and "ROUGE-L" in notes[2]
    assert len(grown.dataset) == len(ROWS)  # nothing reaches the dataset before acceptance


def test_a_copy_that_differs_only_unseen_is_a_duplicate_naming_the_characters(grown):
    """A seed row with a zero-width space inside, and a row with its accent decomposed (NFD),
    read as the rows they copy: both dropped as duplicates, the invisible one named."""
    zero_width = asked("Name three primary\u200b colours.", "Red, yellow and blue.")
    decomposed = asked("Translate 'good morning' into Spanish.", "Buenos di\u0301as.")
    fake = scripted([zero_width, decomposed])
    grown.synthesize(seed_rows=[0, 1], n=2, generator=fake, batch_size=2)
    verdicts = [(c.verdict.dropped, c.verdict.note) for c in grown.candidates]
    assert verdicts == [
        ("duplicate", "same as row 0 but for invisible U+200B ZERO WIDTH SPACE"),
        ("duplicate", "same as row 2"),
    ]


def test_too_long_rows_are_dropped_and_other_languages_or_formats_flagged(grown):
    grown.set_max_length(128)
    french = "Écrivez une courte description de la ville de Paris et de ses monuments célèbres."
    fake = scripted(
        [
            asked("Describe the ocean.", " ".join(f"The {i}th wave is deep." for i in range(60))),
            asked(french, "Paris est une belle ville, avec la tour Eiffel et le Louvre."),
            asked("Опишите город коротко.", "Это город."),
            '{"instruction": "Give a synonym of quick.", "response": "Fast."}',
        ]
    )
    result = grown.synthesize(n=4, generator=fake)
    first, *rest = grown.candidates
    assert first.verdict.dropped == "too_long" and "128" in first.verdict.note
    assert all(c.status == "pending" for c in rest)  # flagged, kept for a person to judge
    assert "language" in rest[0].verdict.flags and "language" in rest[1].verdict.flags
    assert "Cyrillic" in rest[1].verdict.flags["language"]
    assert "json" in rest[2].verdict.flags["format"]
    assert result.flagged == 3


def test_an_english_candidate_in_the_seeds_style_is_not_flagged(session):
    session.load_dataset(demo_data.generate(60, seed=1))
    fake = scripted(
        [
            asked(
                "Write the names of the days of the week in order, starting from Monday.",
                "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday",
            )
        ]
    )
    session.synthesize(n=1, generator=fake)
    (candidate,) = session.candidates
    assert candidate.status == "pending" and candidate.verdict.flags == {}


# -- staging, accepting, rejecting ---------------------------------------------------------------
def test_accepted_rows_go_through_the_edit_log_and_survive_a_restart(session, tmp_path):
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(chat(p, a)) + "\n" for p, a in ROWS))
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    session.load_dataset(str(source))
    fake = scripted([asked("Name a bird that cannot fly.", "The penguin."), asked(*ROWS[3])])
    session.synthesize(seed_rows=[3, 4], n=2, generator=fake, instruction="animals")
    kept, dup = session.candidates
    (row,) = session.accept([kept.id])
    assert row == len(ROWS) and session.dataset[row]["messages"][1]["content"] == "The penguin."
    origin = session.dataset[row]["origin"]
    assert origin["generator"] == "fake" and origin["candidate"] == kept.id
    assert origin["instruction"] == "animals" and set(origin["seed_rows"]) <= {3, 4}
    with pytest.raises(ValueError, match="Nothing was accepted"):
        session.accept([dup.id])  # a duplicate never reaches the dataset
    assert session.accept([kept.id]) == [row]  # accepting twice adds nothing
    edits = read_jsonl(session.workspace.edits_file)
    assert [e["op"] for e in edits] == ["add"] and edits[0]["origin"]["candidate"] == kept.id
    out = session.export_dataset(tmp_path / "clean.jsonl")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[-1]["origin"]["candidate"] == kept.id and lines[0]["origin"] is None
    table = pq.read_table(session.export_dataset(tmp_path / "clean.parquet"))
    assert table.column("origin").to_pylist()[-1]["generator"] == "fake"
    path = session.path
    session.close()
    with wb.Session.open(path) as again:
        assert len(again.dataset) == len(ROWS) + 1
        assert again.dataset[row]["origin"]["candidate"] == kept.id
        assert {c.id: c.status for c in again.candidates} == {
            kept.id: "accepted",
            dup.id: "dropped",
        }
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before  # the source is untouched


def test_rejected_candidates_never_reach_the_dataset(grown):
    fake = scripted(
        [asked("Name a planet with rings.", "Saturn."), asked("Name a metal.", "Iron.")]
    )
    grown.synthesize(n=2, generator=fake)
    first, second = grown.candidates
    grown.reject([first.id, second.id], reason="off topic")
    assert {c.status for c in grown.candidates} == {"rejected"}
    assert grown.candidates[0].reason == "off topic"
    assert len(grown.dataset) == len(ROWS)
    records = read_jsonl(grown.workspace.candidates_file)
    assert [r["event"] for r in records] == ["candidate", "candidate", "reject", "reject"]
    grown.accept([second.id])  # a person may change their mind
    with pytest.raises(ValueError, match="exclude those rows"):
        grown.reject([second.id])


def test_a_typo_in_the_staging_file_is_refused_naming_the_file_and_key(grown):
    grown.synthesize(n=1, generator=scripted([asked("Name a mammal that lays eggs.", "Platypus.")]))
    path = grown.workspace.candidates_file
    record = read_jsonl(path)[0]
    path.write_text(json.dumps({**record, "verdikt": {}}) + "\n")
    with pytest.raises(ValueError, match=r"candidates.jsonl, record 1.*'verdikt'"):
        _ = grown.candidates


def test_an_edited_candidate_is_checked_again(grown):
    grown.synthesize(n=1, generator=scripted([asked(*ROWS[2])]))
    (dup,) = grown.candidates
    assert dup.status == "dropped"
    fresh = [
        {"role": "user", "content": "Translate 'thank you' into Japanese."},
        {"role": "assistant", "content": "Arigatō."},
    ]
    with pytest.raises(TypeError, match="candidate"):
        grown.edit_candidate(dup.id, [{"role": "robot", "content": "x"}])
    edited = grown.edit_candidate(dup.id, fresh)
    assert edited.status == "pending" and edited.edited and edited.messages == fresh
    assert grown.accept(dup.id) == [len(ROWS)]
    with pytest.raises(ValueError, match="edit that row"):
        grown.edit_candidate(dup.id, fresh)


def test_a_judge_grades_the_kept_candidates(grown):
    fake = scripted([asked("Name a river in Africa.", "The Nile."), asked(*ROWS[0])])
    judge = scripted(["Grade: 5\nReason: correct."])
    result = grown.synthesize(n=2, generator=fake, judge=judge)
    kept, dup = grown.candidates
    assert (kept.verdict.grade, kept.verdict.judge_reason) == (5, "correct.")
    assert dup.verdict.grade is None and len(judge.seen) == 1  # dropped ones are not judged
    assert result.judged == 1 and "The Nile." in judge.seen[0]


def test_stop_keeps_the_batches_done(grown):
    stop = threading.Event()
    answers = [asked(f"Spell the number {k} in words, please.", str(k)) for k in range(9)]
    fake = scripted(answers)
    result = grown.synthesize(
        n=9, generator=fake, batch_size=3, stop=stop, progress=lambda r: stop.set()
    )
    assert result.stopped and result.asked == 3 and len(fake.seen) == 3
    assert len(grown.candidates) == 3


def test_bad_requests_are_refused_clearly(grown):
    with pytest.raises(ValueError, match="at least 1"):
        grown.synthesize(n=0, generator=scripted([]))
    with pytest.raises(TypeError, match="temprature"):
        grown.synthesize(n=1, generator=scripted([]), temprature=0.5)
    grown.add_row([{"role": "user", "content": "unanswered"}])
    with pytest.raises(ValueError, match="assistant answer"):
        grown.synthesize(seed_rows=[len(ROWS)], n=1, generator=scripted([]))
    with pytest.raises(IndexError):
        grown.synthesize(seed_rows=[999], n=1, generator=scripted([]))
    with pytest.raises(KeyError, match="session.candidates"):
        grown.accept(["nope"])
    with pytest.raises(TypeError, match="origin"):
        grown.add_row(chat(*ROWS[0])["messages"], origin="a string")


def test_the_tiny_model_generates_and_malformed_answers_are_counted(grown):
    result = grown.synthesize(n=3, generator="base", max_new_tokens=24, batch_size=3)
    assert result.asked == result.answered == 3
    assert result.parsed + result.dropped.get("malformed", 0) == 3  # gibberish never crashes
    staged = grown.candidates
    assert len(staged) == 3 and all(c.origin.generator == "base" for c in staged)
    assert all(c.raw for c in staged if c.verdict.dropped == "malformed")
    assert len(grown.dataset) == len(ROWS)


def test_a_session_model_continues_documents_and_cut_candidates_count_as_too_long(
    grown, monkeypatch
):
    calls = []

    def continuations(documents, model, settings, stop=None, done=None):
        calls.append((documents, settings, done))
        return [
            Continuation("Name the four seasons.\n### Response:\nSpring, summer, autumn, winter."),
            Continuation("Count to 300.\n### Response:\n" + " ".join(map(str, range(300)))),
            Continuation("Describe the sea.\n### Response:\nThe sea is wide and", ran_out=True),
        ]

    monkeypatch.setattr(grown.generator, "complete_batch", continuations)
    result = grown.synthesize(n=3, generator="base", max_new_tokens=64)
    ((documents, settings, done),) = calls
    assert all(d.endswith("\n\n### Instruction:\n") for d in documents)  # no chat request
    assert settings.top_k == 50 and done("1, " * 100)  # a runaway list stops the row
    kept, *cut = grown.candidates
    assert kept.status == "pending" and kept.messages[0]["content"] == "Name the four seasons."
    assert [c.verdict.dropped for c in cut] == ["too_long", "too_long"]
    assert "answer ran past 96" in cut[0].verdict.note
    assert "max_new_tokens (64)" in cut[1].verdict.note
    assert cut[1].messages[1]["content"] == "The sea is wide and"  # kept to read and edit
    assert result.kept == 1 and result.dropped == {"too_long": 2}
    fake = scripted([asked("Name a fruit.", "A pear.")])
    grown.synthesize(n=1, generator=fake)  # a function answers the chat request
    assert "Write one new example" in fake.seen[0]


# -- the HTTP generator against a stand-in OpenAI-compatible server -----------------------------
class StandIn:
    """An OpenAI-compatible server on 127.0.0.1 for tests: `mode` decides how it answers."""

    def __init__(self, mode: str = "ok", delay: float = 0.0):
        self.mode, self.delay, self.requests, self.headers = mode, delay, [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer._reply(self, {"object": "list", "data": [{"id": "stand-in"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                time.sleep(outer.delay)
                k = len(outer.requests)
                if outer.mode == "garbage" or (outer.mode == "fail_after_2" and k > 2):
                    return outer._reply(self, "<html>not json</html>", raw=True)
                text = asked(f"Name {k} things that are green, like grass.", "Grass, ...")
                choice = {"message": {"role": "assistant", "content": text}}
                if outer.mode == "cut" and k == 2:
                    choice["finish_reason"] = "length"  # stopped at max_tokens
                outer._reply(self, {"choices": [choice]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _reply(self, handler, data, raw: bool = False) -> None:
        payload = (data if raw else json.dumps(data)).encode()
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html" if raw else "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:  # the client gave up waiting (the slow case)
            pass

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    servers = []

    def start(mode: str = "ok", delay: float = 0.0) -> StandIn:
        servers.append(StandIn(mode, delay))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_the_http_generator_path_stages_candidates(grown, stand_in, monkeypatch):
    server = stand_in()
    monkeypatch.setenv("STAND_IN_KEY", "secret-1")
    endpoint = Endpoint(server.url + "/v1", api_key_env="STAND_IN_KEY", timeout=10)
    result = grown.synthesize(n=3, generator=endpoint, temperature=0.5, max_new_tokens=64)
    assert result.asked == result.parsed == 3
    assert [r["model"] for r in server.requests] == ["stand-in"] * 3  # the first model listed
    assert server.requests[0]["max_tokens"] == 64 and server.requests[0]["temperature"] == 0.5
    assert server.headers[0]["Authorization"] == "Bearer secret-1"
    assert {c.origin.generator for c in grown.candidates} == {endpoint.name}
    grown.synthesize(n=1, generator=server.url)  # a plain URL works as well


def test_an_answer_the_server_stopped_at_max_tokens_counts_as_too_long(grown, stand_in):
    result = grown.synthesize(n=3, generator=stand_in("cut").url, max_new_tokens=64)
    assert result.parsed == 3 and result.dropped.get("too_long") == 1
    cut = grown.candidates[1]
    assert cut.verdict.note == "the endpoint stopped it at max_tokens (64)"
    assert cut.messages[0]["content"] == "Name 2 things that are green, like grass."


def test_an_endpoint_that_answers_garbage_keeps_what_was_staged(grown, stand_in):
    server = stand_in("fail_after_2")
    with pytest.raises(SynthesisError, match="not JSON") as failed:
        grown.synthesize(n=5, generator=server.url, batch_size=5)
    assert failed.value.result.answered == 2 and "What was staged stays" in str(failed.value)
    assert len(grown.candidates) == 2  # the two good answers before the garbage


def test_an_endpoint_that_is_down_or_slow_says_so(grown, stand_in, monkeypatch):
    server = stand_in()
    port = server.server.server_port
    server.close()
    with pytest.raises(SynthesisError, match="Cannot reach .*Start the server"):
        grown.synthesize(n=1, generator=f"http://127.0.0.1:{port}")
    slow = stand_in(delay=1.0)
    with pytest.raises(SynthesisError, match="did not answer within 0.3 s"):
        grown.synthesize(n=1, generator=Endpoint(slow.url, model="m", timeout=0.3))
    monkeypatch.delenv("NO_SUCH_KEY_VARIABLE", raising=False)
    with pytest.raises(EndpointError, match="NO_SUCH_KEY_VARIABLE"):
        Endpoint(slow.url, api_key_env="NO_SUCH_KEY_VARIABLE").generate(
            ["x"], wb.GenerationSettings()
        )
    with pytest.raises(ValueError, match="http"):
        Endpoint("127.0.0.1:8080")
    assert grown.candidates == []


# -- the embedded model, for real -----------------------------------------------------------------
@pytest.mark.slow
def test_the_embedded_model_writes_candidates_into_the_staging_file(tmp_path, default_model_dir):
    with wb.Session.open(tmp_path / "ws") as s:
        s.load_dataset(demo_data.generate(40, seed=3))
        result = s.synthesize(seed_rows=range(10), n=10, generator="base", max_new_tokens=128)
        assert result.asked == result.answered == 10
        assert result.parsed >= 4, result.summary()  # about 8 of 10 parse at 0.7
        assert result.parsed + result.dropped.get("malformed", 0) == 10
        staged = read_jsonl(s.workspace.candidates_file)
        assert len(staged) == 10 and sum(r["messages"] is not None for r in staged) == result.parsed
        assert len(s.dataset) == 40 + len(demo_data.generate(0, seed=3))
