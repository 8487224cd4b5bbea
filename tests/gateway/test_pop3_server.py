"""The POP3 server state machine without sockets: scripted conversations against a fake
maildrop (a dict), and Hypothesis for the byte-stuffing."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from mailvault.gateway.pop3_login import Close, Login, Send, StartTls
from mailvault.gateway.pop3_server import (
    Action,
    Entry,
    Pop3Server,
    Retrieve,
    ServerOptions,
    State,
    Update,
)
from mailvault.gateway.pop3_wire import MultilineReader, stuffed, unstuffed

MESSAGES = {
    "a": b"Subject: one\r\n\r\n.starts with a dot\r\nline\r\n..two dots\r\n",
    "b": b"Subject: two\r\nX: y\r\n\r\nbody 1\r\nbody 2\r\nbody 3\r\n",
    "c": b"Subject: three\r\n\r\n.\r\n",
}


@dataclass
class FakeMaildrop:
    """Answers the machine's requests the way the edge would, and records deletions."""

    password: str = "secret"
    messages: dict[str, bytes] = field(default_factory=lambda: dict(MESSAGES))
    deleted: list[str] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    closed: bool = False
    tls: bool = False

    def run(self, server: Pop3Server, actions: list[Action]) -> bytes:
        sent = b""
        while actions:
            action, actions = actions[0], actions[1:]
            if isinstance(action, Send):
                sent += action.data
            elif isinstance(action, Close):
                self.closed = True
            elif isinstance(action, StartTls):
                self.tls = True
                actions += server.tls_started()
            elif isinstance(action, Login):
                self.logins.append(action.user)
                if action.password == self.password:
                    entries = [Entry(k, len(v), f"uid-{k}") for k, v in self.messages.items()]
                    actions += server.logged_in(action.user, entries)
                else:
                    actions += server.login_refused()
            elif isinstance(action, Retrieve):
                actions += server.retrieved(self.messages[action.key])
            elif isinstance(action, Update):
                self.deleted += action.keys
                actions += server.updated()
        return sent

    def say(self, server: Pop3Server, data: bytes) -> bytes:
        return self.run(server, server.receive(data))


def _server(**options: bool) -> tuple[Pop3Server, FakeMaildrop]:
    settings = {"tls_active": False, "tls_available": True, "plaintext_allowed": True}
    settings.update(options)
    server = Pop3Server(ServerOptions(**settings))
    drop = FakeMaildrop()
    assert drop.run(server, server.start()).startswith(b"+OK")
    return server, drop


def _logged_in() -> tuple[Pop3Server, FakeMaildrop]:
    server, drop = _server()
    assert drop.say(server, b"USER box1\r\nPASS secret\r\n") == (
        b"+OK Send PASS\r\n+OK 3 messages (%d octets)\r\n" % sum(map(len, MESSAGES.values())))
    return server, drop


def _body(reply: bytes) -> bytes:
    status, _, rest = reply.partition(b"\r\n")
    assert status.startswith(b"+OK")
    reader = MultilineReader(1 << 20)
    assert reader.feed(rest) == b"" and reader.done
    return unstuffed(reader.body())


def test_retr_returns_the_bytes_stuffed_and_stat_list_uidl_agree() -> None:
    server, drop = _logged_in()
    for number, key in enumerate(MESSAGES, 1):
        assert _body(drop.say(server, b"RETR %d\r\n" % number)) == MESSAGES[key]
    reply = drop.say(server, b"RETR 1\r\n")
    assert b"\r\n..starts with a dot\r\n" in reply and b"\r\n...two dots\r\n" in reply
    assert drop.say(server, b"STAT\r\n") == b"+OK 3 %d\r\n" % sum(map(len, MESSAGES.values()))
    assert drop.say(server, b"UIDL\r\n") == b"+OK\r\n1 uid-a\r\n2 uid-b\r\n3 uid-c\r\n.\r\n"
    assert drop.say(server, b"LIST 2\r\n") == b"+OK 2 %d\r\n" % len(MESSAGES["b"])
    assert drop.say(server, b"uidl 3\r\n") == b"+OK 3 uid-c\r\n"
    assert drop.say(server, b"RETR 4\r\n").startswith(b"-ERR")
    assert drop.say(server, b"RETR x\r\n").startswith(b"-ERR")


def test_top_gives_the_header_and_that_many_lines() -> None:
    server, drop = _logged_in()
    assert _body(drop.say(server, b"TOP 2 1\r\n")) == b"Subject: two\r\nX: y\r\n\r\nbody 1\r\n"
    assert _body(drop.say(server, b"TOP 2 0\r\n")) == b"Subject: two\r\nX: y\r\n\r\n"
    assert _body(drop.say(server, b"TOP 2 9\r\n")) == MESSAGES["b"]


def test_deletions_apply_only_at_quit_in_transaction() -> None:
    server, drop = _logged_in()
    assert drop.say(server, b"DELE 1\r\nDELE 3\r\n") == b"+OK Marked for deletion\r\n" * 2
    assert drop.say(server, b"RETR 1\r\n").startswith(b"-ERR")
    assert drop.say(server, b"STAT\r\n") == b"+OK 1 %d\r\n" % len(MESSAGES["b"])
    assert drop.say(server, b"LIST\r\n") == b"+OK\r\n2 %d\r\n.\r\n" % len(MESSAGES["b"])
    assert drop.deleted == []
    assert drop.say(server, b"QUIT\r\n") == b"+OK Bye\r\n"
    assert drop.deleted == ["a", "c"] and drop.closed and server.state is State.CLOSED


def test_rset_and_a_drop_before_quit_delete_nothing() -> None:
    server, drop = _logged_in()
    drop.say(server, b"DELE 1\r\nRSET\r\nDELE 2\r\n")
    assert drop.say(server, b"STAT\r\n").startswith(b"+OK 2 ")
    # The client goes away here: the edge never calls anything more, so nothing is deleted.
    assert drop.deleted == [] and not drop.closed


def test_quit_before_login_deletes_nothing_and_closes() -> None:
    server, drop = _server()
    assert drop.say(server, b"DELE 1\r\nQUIT\r\n") == b"-ERR Not in this state\r\n+OK Bye\r\n"
    assert drop.closed and drop.deleted == []


def test_wrong_password_is_refused_and_the_third_closes() -> None:
    server, drop = _server()
    for _ in range(2):
        assert drop.say(server, b"USER box1\r\nPASS nope\r\n").endswith(
            b"-ERR [AUTH] Wrong user name or password\r\n")
        assert server.state is State.AUTHORIZATION and not drop.closed
    drop.say(server, b"USER box1\r\nPASS nope\r\n")
    assert drop.closed and server.state is State.CLOSED


def test_no_password_before_tls_where_plaintext_is_not_allowed() -> None:
    server, drop = _server(plaintext_allowed=False)
    capa = drop.say(server, b"CAPA\r\n")
    assert b"STLS\r\n" in capa and b"USER\r\n" not in capa
    assert drop.say(server, b"USER box1\r\n").startswith(b"-ERR [AUTH]")
    assert drop.say(server, b"PASS secret\r\n").startswith(b"-ERR [AUTH]")
    assert drop.logins == []
    # What the client sends behind STLS before the handshake is dropped (RFC 2595 4).
    assert drop.say(server, b"STLS\r\nUSER injected\r\n") == b"+OK Begin TLS negotiation\r\n"
    assert drop.tls
    capa = drop.say(server, b"CAPA\r\n")
    assert b"STLS\r\n" not in capa and b"USER\r\n" in capa
    assert drop.say(server, b"PASS secret\r\n") == b"-ERR Send USER first\r\n"
    assert drop.say(server, b"USER box1\r\nPASS secret\r\n").endswith(b"(%d octets)\r\n" % sum(
        map(len, MESSAGES.values())))


def test_implicit_tls_offers_no_stls() -> None:
    server, drop = _server(tls_active=True, plaintext_allowed=False)
    assert b"STLS" not in drop.say(server, b"CAPA\r\n")
    assert drop.say(server, b"STLS\r\n").startswith(b"-ERR")


def test_pipelined_commands_wait_for_the_edge_and_keep_their_order() -> None:
    server, drop = _server()
    actions = server.receive(b"USER box1\r\nPASS secret\r\nSTAT\r\nQUIT\r\n")
    assert isinstance(actions[-1], Login) and server.waiting
    assert drop.run(server, actions).split(b"\r\n")[-3:] == [b"+OK 3 %d" % sum(
        map(len, MESSAGES.values())), b"+OK Bye", b""]


def test_long_lines_and_many_errors_are_bounded() -> None:
    server, drop = _server()
    assert drop.say(server, b"NOOP " + b"x" * 5000) == b""  # no line end yet: nothing kept
    assert server._lines.buffered < 300
    assert drop.say(server, b"yy\r\n") == b"-ERR Line too long\r\n"
    replies = drop.say(server, b"BOGUS\r\n" * 30)
    # The long line was the first of 20 refusals in a row; the 20th closes.
    assert replies.count(b"\r\n") == 19 and replies.endswith(b"Too many commands, closing\r\n")
    assert drop.closed


def test_the_command_count_is_bounded() -> None:
    server = Pop3Server(ServerOptions(False, False, True, max_commands=5))
    drop = FakeMaildrop()
    replies = drop.say(server, b"USER b\r\nPASS secret\r\n" + b"NOOP\r\n" * 10)
    assert replies.endswith(b"Too many commands, closing\r\n") and drop.closed
    assert replies.count(b"+OK\r\n") == 3


@given(st.lists(st.sampled_from([b"", b".", b"..", b"a", b".a", b"From x", b" ."]),
                max_size=12))
def test_stuffing_round_trips(lines: list[bytes]) -> None:
    raw = b"".join(line + b"\r\n" for line in lines)
    body = stuffed(raw)
    assert not any(line == b"." for line in body.split(b"\r\n")[:-2])
    reader = MultilineReader(1 << 16)
    assert reader.feed(b"\r\n"[2:] + body) == b"" and reader.done
    assert unstuffed(reader.body()) == raw


def test_multiline_reader_reads_over_the_limit_through() -> None:
    reader = MultilineReader(10)
    for chunk in (b"a" * 30 + b"\r", b"\n", b".", b"\r\n+OK next"):
        rest = reader.feed(chunk)
    assert reader.done and reader.over_limit and rest == b"+OK next"
