"""Chat and the REST API read stage, priority and age words from one table (core/vocabulary.py): a word one
accepts the other accepts with the same meaning, and a word one refuses the other refuses, with suggestions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.api.portal import filters as rest
from core import vocabulary
from core.chat import grammar
from core.errors import InvalidFilter
from core.status import parse_priority, parse_stage
from store.enums import OPEN_STAGES, Priority, Stage


def _chat_stages(word: str) -> frozenset[Stage]:
    cmd = grammar.parse("tickets", f"stage:{word}")
    assert isinstance(cmd, grammar.ListTickets)
    return frozenset(cmd.stages or OPEN_STAGES)


def _rest_stages(word: str) -> frozenset[Stage]:
    stages, include_closed = rest.stages([word])
    return frozenset(stages or (tuple(Stage) if include_closed else OPEN_STAGES))


def _chat_priorities(word: str) -> tuple[Priority, ...]:
    cmd = grammar.parse("tickets", f"priority:{word}")
    assert isinstance(cmd, grammar.ListTickets)
    return cmd.priorities


def _chat_age(word: str) -> tuple[timedelta | None, timedelta | None]:
    cmd = grammar.parse("tickets", f"age:{word}")
    assert isinstance(cmd, grammar.ListTickets)
    return cmd.min_age, cmd.max_age


STAGE_WORDS = [*vocabulary.STAGE_WORDS, "pending", "waiting_on_customer", "Waiting-On-Customer", "open",
               "in-progress", "new,waiting", "open,closed"]
PRIORITY_WORDS = [*vocabulary.PRIORITY_WORDS, "P1", "Urgent", "high,p1"]
AGES = [">2d", "<4h", "2d", ">1w2d", "<1d12h", "30m", "> 2d"]


@pytest.mark.parametrize("word", STAGE_WORDS)
def test_chat_and_rest_read_a_stage_word_alike(word: str) -> None:
    assert _chat_stages(word) == _rest_stages(word)


@pytest.mark.parametrize("word", PRIORITY_WORDS)
def test_chat_and_rest_read_a_priority_word_alike(word: str) -> None:
    assert _chat_priorities(word) == rest.priorities([word])


@pytest.mark.parametrize("word", AGES)
def test_chat_and_rest_read_an_age_alike(word: str) -> None:
    assert _chat_age(word.replace(" ", "")) == rest.ages([word])


def test_the_words_the_issue_named() -> None:
    assert _rest_stages("pending") == _chat_stages("pending") == {Stage.WAITING}
    assert _chat_stages("waiting_on_customer") == _rest_stages("waiting_on_customer") == {Stage.WAITING}
    assert rest.priorities(["p1"]) == rest.priorities(["urgent"]) == _chat_priorities("p1") == (Priority.CRITICAL,)
    assert rest.ages([">1w2d"]) == _chat_age(">1w2d") == (timedelta(days=9), None)
    # `open` filters every open stage in both; set as a ticket's stage it reopens it (in progress).
    assert _chat_stages("open") == _rest_stages("open") == frozenset(OPEN_STAGES)
    assert parse_stage("open") == Stage.IN_PROGRESS and parse_stage("all") is None
    assert parse_priority("urgent") == Priority.CRITICAL


@pytest.mark.parametrize(("kind", "word"), [
    ("stage", "nwe"), ("stage", "opn"), ("stage", "later"), ("priority", "urgentish"), ("priority", "p9"),
    ("priority", "hgh"), ("age", "yesterday"), ("age", ">soon"), ("age", "2x"), ("age", "9999999w"),
])
def test_chat_and_rest_refuse_the_same_words_with_the_same_suggestions(kind: str, word: str) -> None:
    with pytest.raises(InvalidFilter) as chat:
        grammar.parse("tickets", f"{kind}:{word}")
    with pytest.raises(InvalidFilter) as api:
        {"stage": rest.stages, "priority": rest.priorities, "age": rest.ages}[kind]([word])
    assert chat.value.message == api.value.message
    assert list(chat.value.suggestions or ()) == list(api.value.suggestions or ())


def test_a_refused_word_says_what_would_work() -> None:
    with pytest.raises(InvalidFilter) as chat:
        grammar.parse("tickets", "stage:waitng")
    assert chat.value.suggestions == ["waiting"] and "`stage:waiting`" in (chat.value.hint or "")
    with pytest.raises(InvalidFilter) as api:
        rest.stages(["waitng"])
    assert api.value.suggestions == ["waiting"] and "`stage=waiting`" in (api.value.hint or "")
