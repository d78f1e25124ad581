"""The chat command grammar (pure): text in, a frozen command out, or an error saying what would work."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.chat import grammar as c
from core.errors import InvalidFilter, InvalidInput
from core.queue import QueueSort
from store.enums import OPEN_STAGES, Priority, Stage


def test_filters_keys_bare_words_and_free_text():
    cmd = c.parse("/tickets", 'customer:ACME stage:waiting priority:high,critical age:>2d sort:priority mine vpn down')
    assert cmd == c.ListTickets(customer="ACME", stages=(Stage.WAITING,), priorities=(Priority.HIGH, Priority.CRITICAL),
                                min_age=timedelta(days=2), sort=QueueSort.PRIORITY, assignee="mine", text="vpn down")


def test_bare_keywords():
    cmd = c.parse("tickets", "unassigned breaching high open")
    assert cmd.assignee == "unassigned" and cmd.breaching and cmd.priorities == (Priority.HIGH,)
    assert cmd.stages == OPEN_STAGES and not cmd.include_closed
    assert c.parse("tickets", "closed").include_closed


def test_quoted_status_aliases_and_ages():
    cmd = c.parse("tickets", 'status:"Waiting Customer Response" cust:globex owner:@bob newer:4h older:1w2d')
    assert cmd.statuses == ("Waiting Customer Response",)
    assert cmd.customer == "globex" and cmd.assignee == "bob"
    assert cmd.max_age == timedelta(hours=4) and cmd.min_age == timedelta(days=9)
    assert c.parse("tickets", "age:<30m").max_age == timedelta(minutes=30)


def test_unknown_filter_key_suggests_the_close_one():
    with pytest.raises(InvalidFilter) as e:
        c.parse("tickets", "custmer:ACME")
    assert e.value.suggestions == ["customer:ACME"]
    assert "customer:ACME" in e.value.hint


@pytest.mark.parametrize(("text", "expected"), [
    ("priority:hgh", ["high"]), ("stage:waitng", ["waiting"]), ("sort:prio", ["priority"])])
def test_unknown_values_suggest(text, expected):
    with pytest.raises(InvalidFilter) as e:
        c.parse("tickets", text)
    assert e.value.suggestions == expected


def test_bad_durations_and_quotes_are_helpful():
    with pytest.raises(InvalidFilter, match="not a duration"):
        c.parse("tickets", "age:>soon")
    with pytest.raises(InvalidFilter, match="quote"):
        c.parse("tickets", 'status:"Waiting')
    with pytest.raises(InvalidFilter, match="no value"):
        c.parse("tickets", "customer:")


def test_ticket_commands():
    assert c.parse("/ticket", "#1042") == c.ShowTicket("1042")
    assert c.parse("/ticket", "new Printer on fire") == c.NewTicket("Printer on fire")
    with pytest.raises(InvalidInput, match="not a ticket number"):
        c.parse("/ticket", "abc")
    with pytest.raises(InvalidInput, match="Which ticket"):
        c.parse("/ticket", "")


def test_admin_commands():
    assert c.parse("/deskbridge", "") == c.Help()
    assert c.parse("/deskbridge", "bind customer ACME Corp") == c.Bind("customer", "ACME Corp")
    assert c.parse("/deskbridge", "bind sla") == c.Bind("sla", None)
    assert c.parse("/deskbridge", "link") == c.Link()
    assert c.parse("/deskbridge", "link <@U123|ana> ana@x.example") == c.Link(email="ana@x.example", user="U123")
    assert c.parse("/deskbridge", "outbox redrive 12") == c.Outbox("redrive", 12)
    assert c.parse("/deskbridge", "settings first_reply_moves_to_in_progress on") == \
        c.SettingsCmd("first_reply_moves_to_in_progress", "on")
    with pytest.raises(InvalidFilter) as e:
        c.parse("/deskbridge", "bnid customer ACME")
    assert e.value.suggestions == ["bind"]
    with pytest.raises(InvalidFilter) as e:
        c.parse("/deskbridge", "bind custmer ACME")
    assert e.value.suggestions == ["customer"]
    with pytest.raises(InvalidInput, match="Which op"):
        c.parse("/deskbridge", "outbox redrive")


def test_unknown_command():
    with pytest.raises(InvalidInput, match="Unknown command"):
        c.parse("/tikets", "")


@pytest.mark.parametrize(("text", "minutes"), [("30", 30), ("30m", 30), ("1h", 60), ("1h30m", 90), ("1.5h", 90),
                                               ("90 min", 90), ("2h 15m", 135)])
def test_minutes(text, minutes):
    assert c.parse_minutes(text) == minutes


def test_thread_messages_are_internal_unless_marked():
    assert c.parse_thread_message("checked the logs") == c.ThreadReply("internal", "checked the logs")
    assert c.parse_thread_message("!public We fixed it") == c.ThreadReply("public", "We fixed it")
    assert c.parse_thread_message("/reply Hi Bob") == c.ThreadReply("public", "Hi Bob")
    assert c.parse_thread_message("!time 45m rebooted") == c.ThreadReply("internal", "rebooted", minutes=45)
    assert c.parse_thread_message("!skip just chatting") is None
    assert c.parse_thread_message("!public") is None
    assert c.parse_thread_message("   ") is None


def test_bind_shared_marks_a_channel_the_customer_reads():
    from core.chat.grammar import Bind, parse

    assert parse("/deskbridge", "bind customer Acme Corp shared") == Bind("customer", "Acme Corp", shared=True)
    assert parse("/deskbridge", "bind customer ACME --shared") == Bind("customer", "ACME", shared=True)
    assert parse("/deskbridge", "bind customer ACME") == Bind("customer", "ACME", shared=False)
    with pytest.raises(InvalidInput, match="Which customer"):
        parse("/deskbridge", "bind customer shared")


def test_conflicting_single_value_filters_are_pointed_out():
    from core.chat.grammar import parse_filters

    for text in ("mine unassigned", "assignee:bob unassigned", "customer:ACME customer:GLOBEX"):
        with pytest.raises(InvalidFilter, match="Two (assignee|customer) filters"):
            parse_filters(text)
    assert parse_filters("mine mine").assignee == "mine"  # the same twice is no conflict


def test_my_queue_words():
    assert c.parse("deskbridge", "my queue") == c.MyQueue()
    assert c.parse("deskbridge", "home") == c.MyQueue()
    with pytest.raises(InvalidFilter):
        c.parse("deskbridge", "my tickets please")


def test_help_and_hints_in_each_surfaces_command_form():
    from core.chat.text import MENTION, SLASH, help_lines

    assert help_lines(SLASH)[0].startswith("`/tickets`") and "`/deskbridge link`" in "\n".join(help_lines(SLASH))
    mention = "\n".join(help_lines(MENTION))
    assert "`@Deskbridge tickets mine`" in mention and "`@Deskbridge ticket 1042`" in mention
    assert "/tickets" not in mention and "/deskbridge" not in mention
    hint = "Try /tickets, /ticket or /deskbridge help; see https://psa.example/ticket/5 and `/deskbridge link`."
    assert SLASH.restyle(hint) == hint
    assert MENTION.restyle(hint) == ("Try @Deskbridge tickets, @Deskbridge ticket or @Deskbridge help; see "
                                     "https://psa.example/ticket/5 and `@Deskbridge link`.")
