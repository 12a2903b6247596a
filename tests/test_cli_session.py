"""``sipsimple session`` driven through pipes: a call to baresip through Kamailio as a configured account
(hold, unhold, DTMF, recording, hang-up), chat between two session processes, end of input, Ctrl-C and
the errors a user can make.

Every step waits for the line that reports it; nothing sleeps.
"""

from __future__ import annotations

import re
import signal

import pytest

from tests.audio_analysis import dominant_frequency, level_dbfs, read_wav
from tests.cli_helpers import CLIProcess, assert_one_line_error, run_cli
from tests.peers.ports import free_port

P2P = ["--local-ip", "127.0.0.1"]


def test_call_baresip_as_configured_account_hold_dtmf_record_hang_up(tmp_path, kamailio, baresip_factory):
    config = ["--config-dir", str(tmp_path / "config")]
    added = run_cli(*config, "account", "add", f"alice@{kamailio.domain}", "--password", kamailio.users["alice"],
                    "--proxy", f"{kamailio.host}:{kamailio.port}")
    assert added.returncode == 0, added.stderr
    bob = baresip_factory(user="bob", password=kamailio.users["bob"], registrar=f"{kamailio.host}:{kamailio.port}")
    bob.wait_registered()
    recording = tmp_path / "call.wav"
    with CLIProcess(*config, "session") as alice:
        alice.wait_line(f"registered alice@{kamailio.domain}: 200 OK")
        alice.send("/call bob")
        assert alice.wait_line("[1] calling") == f"[1] calling sip:bob@{kamailio.domain}"
        established = alice.wait_line("established")
        assert established.startswith(f"[1] established with sip:bob@{kamailio.domain}: audio PCMU/8000")
        bob.ctrl.wait_event("CALL_ESTABLISHED")

        alice.send(f"/record {recording}")
        alice.wait_line(f"[1] recording to {recording}")
        alice.send("/dtmf 1#")
        assert alice.wait_line("dtmf sent") == "[1] dtmf sent: 1"
        assert alice.wait_line("dtmf sent") == "[1] dtmf sent: #"
        assert [bob.ctrl.wait_event("CALL_DTMF_START")["param"] for _ in range(2)] == ["1", "#"]
        alice.send("/record")
        alice.wait_line(f"[1] recording stopped: {recording}")

        alice.send("/hold")
        alice.wait_line("[1] on hold")  # baresip took it
        alice.send("/sessions")
        assert alice.wait_line("*[1]") == f"*[1] sip:bob@{kamailio.domain} ESTABLISHED audio, on hold"
        alice.send("/unhold")
        alice.wait_line("[1] off hold")

        alice.send("/hang")
        alice.wait_line("[1] ended")
        bob.ctrl.wait_event("CALL_CLOSED")
        alice.send("/quit")
        status, output = alice.finish()
    assert status == 0, (output, alice.stderr_lines)
    assert output.splitlines()[-1] == f"unregistered alice@{kamailio.domain}"
    assert not alice.stderr_lines
    samples, rate = read_wav(recording)
    assert len(samples) > rate * 3 // 10  # it spans the two DTMF digits, 0.35 s apart
    heard = samples[rate // 10:]
    assert abs(dominant_frequency(heard, rate) - 440) < 10 and level_dbfs(heard) > -40  # baresip's tone


def test_chat_between_two_sessions_add_and_remove_streams():
    with CLIProcess("session", "--auto-answer", "--account", "bob@127.0.0.1", *P2P) as bob, \
            CLIProcess("session", "--account", "alice@127.0.0.1", *P2P) as alice:
        address = bob.address()
        assert address.startswith("sip:bob@127.0.0.1:")
        alice.address()
        alice.send(f"/call {address}")
        assert re.search(r": audio opus/48000 srtp=\S+$", alice.wait_line("established"))  # audio only
        assert bob.wait_line("incoming session").endswith(": audio")
        bob.wait_line("established")
        alice.send("no chat yet")
        assert alice.wait_line("error") == "error: [1] cannot send: the session has no chat stream; add it with /chat"

        alice.send("/chat")
        alice.wait_line("[1] proposal accepted by the other party")
        bob.wait_line("[1] streams: audio, chat")
        alice.send("hello bob")
        assert bob.wait_line("hello") == "[1] sip:alice@127.0.0.1: hello bob"
        alice.wait_line("[1] message delivered")
        bob.send("//slash and all")
        assert alice.wait_line("slash") == f"[1] {address}: /slash and all"

        alice.send("/noaudio")
        alice.wait_line("[1] audio removed")
        bob.wait_line("[1] streams: chat")
        alice.send("/audio")
        alice.wait_line("[1] proposal accepted by the other party")
        bob.wait_line("[1] streams: chat, audio")
        alice.send("/hold")
        alice.wait_line("[1] on hold")
        bob.wait_line("[1] put on hold by the other party")
        alice.send("/unhold")
        bob.wait_line("[1] taken off hold by the other party")

        alice.wait_line("[1] off hold")
        alice.send("/nochat")
        # (not waiting for the answer to this re-INVITE: the other side may see the MSRP connection
        # close first and offer the same removal itself, see the report on the Session's glare handling)
        alice.wait_line("[1] streams: audio")
        bob.wait_line("[1] streams: audio")
        alice.send("/hang")
        alice.wait_line("[1] ended")
        bob.wait_line("[1] ended by the other party")
        assert alice.finish()[0] == 0 and bob.finish()[0] == 0  # the end of input ends both


def test_answer_reject_switch_between_two_incoming_sessions():
    with CLIProcess("session", "--account", "bob@127.0.0.1", *P2P) as bob:
        address = bob.address()
        with CLIProcess("session", address, "--chat", "--no-audio", "--account", "alice@127.0.0.1", *P2P) as alice, \
                CLIProcess("session", address, "--account", "carol@127.0.0.1", *P2P) as carol:
            incoming = [re.match(r"^\[(\d)\] incoming session from (\S+) ", bob.wait_line("incoming session"))
                        for _ in range(2)]
            numbers = {match.group(2): match.group(1) for match in incoming}
            assert set(numbers) == {"sip:alice@127.0.0.1", "sip:carol@127.0.0.1"}
            bob.send(f"/reject {numbers['sip:carol@127.0.0.1']}")
            carol.wait_line("[1] failed: 603 Decline")
            alice_n = numbers["sip:alice@127.0.0.1"]
            bob.send(f"/answer {alice_n}")
            alice.wait_line("established")
            bob.wait_line(f"[{alice_n}] established")
            bob.send("/sessions")
            assert bob.wait_line(lambda line: line.startswith("*")) == \
                f"*[{alice_n}] sip:alice@127.0.0.1 ESTABLISHED chat"
            bob.send("/switch 7")
            bob.wait_line("error: no session 7")
            bob.send("hi alice")
            assert alice.wait_line("hi alice").endswith(f"{address}: hi alice")
            alice.send("/quit")
            bob.wait_line(lambda line: line.startswith(f"[{alice_n}] ended"))
            assert alice.finish()[0] == 0 and carol.finish()[0] == 0
        assert bob.finish()[0] == 0


def test_end_of_input_waits_for_typed_messages_then_hangs_up():
    with CLIProcess("session", "--auto-answer", "--account", "bob@127.0.0.1", *P2P) as bob:
        address = bob.address()
        # the message is typed before the chat is up: it goes out once it is, and then the input ends
        result = run_cli("session", address, "--chat", "--no-audio", "--account", "alice@127.0.0.1", *P2P,
                         stdin="written in advance\n")
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "[1] message delivered" in result.stdout and result.stdout.rstrip().endswith("[1] ended")
        assert bob.wait_line("advance") == "[1] sip:alice@127.0.0.1: written in advance"
        bob.wait_line(lambda line: line.startswith("[1] ended"))  # its chat may end first, or the BYE


def test_ctrl_c_ends_the_sessions_and_exits_cleanly():
    with CLIProcess("session", "--auto-answer", "--account", "bob@127.0.0.1", *P2P) as bob:
        address = bob.address()
        with CLIProcess("session", address, "--account", "alice@127.0.0.1", *P2P) as alice:
            alice.wait_line("established")
            alice.process.send_signal(signal.SIGINT)
            alice.wait_line("interrupted")
            alice.wait_line("[1] ended")
            assert alice.process.wait(30) == 0
            assert not [line for line in alice.stderr_lines if "Traceback" in line]
        bob.wait_line("[1] ended by the other party")


def test_commands_with_mistakes_are_answered_and_the_session_goes_on():
    with CLIProcess("session", *P2P) as phone:
        phone.address()
        for command, answer in [
            ("/call tel:+15551234", "error: invalid target 'tel:+15551234': not a SIP URI"),
            ("/call", "error: usage: /call URI [--chat] [--no-audio]"),
            ("/hold", "error: no session; start one with /call URI"),
            ("/dtmf 12x", "error: invalid DTMF digits '12x': expected 0-9 * # A-D"),
            ("/frobnicate", "error: unknown command /frobnicate; /help lists them"),
            ("hello?", "error: no session to send to; start one with /call URI --chat"),
        ]:
            phone.send(command)
            assert phone.wait_line("error") == answer
        # nothing listens there over TCP: the call fails at once
        phone.send(f"/call sip:nobody@127.0.0.1:{free_port()};transport=tcp")
        assert phone.wait_line("failed").startswith("[1] failed: ")
        phone.wait_line("[1] ended")
        phone.send("/quit")
        assert phone.finish()[0] == 0


@pytest.mark.parametrize("args, words", [
    (["tel:+15551234"], ["invalid target"]),
    (["--account", "nobody@example.com"], ["unknown account 'nobody@example.com'"]),
    (["--account", "nobody"], ["unknown account 'nobody'"]),
    (["--audio-device", "no such card"], ["cannot open audio device 'no such card'"]),
    (["--chat"], ["--chat and --no-audio go with TARGET"]),
])
def test_session_usage_errors(tmp_path, args, words):
    assert_one_line_error(run_cli("--config-dir", str(tmp_path), "session", *args, *P2P, timeout=30), *words)


def test_session_with_an_unreachable_configured_proxy(tmp_path):
    config = ["--config-dir", str(tmp_path)]
    port = free_port()
    assert run_cli(*config, "account", "add", "alice@example.com", "--password", "x",
                   "--proxy", f"127.0.0.1:{port}").returncode == 0
    assert_one_line_error(run_cli(*config, "session", timeout=30), "unreachable", f"127.0.0.1:{port}")


def test_account_added_with_no_register_is_not_registered(tmp_path, kamailio):
    config = ["--config-dir", str(tmp_path)]
    assert run_cli(*config, "account", "add", f"alice@{kamailio.domain}", "--password", kamailio.users["alice"],
                   "--proxy", f"{kamailio.host}:{kamailio.port}", "--no-register").returncode == 0
    with CLIProcess(*config, "session") as alice:
        alice.wait_line("type /help")
        alice.send("/quit")
        status, output = alice.finish()
    assert status == 0
    assert output.splitlines() == [output.splitlines()[0], "type /help for the commands"]
    assert output.startswith("listening on sip:alice@127.0.0.1:")


def wait_lines(process: CLIProcess, *starts: str) -> list[str]:
    """The lines starting with each of ``starts``, in whatever order they come (two sessions' answers race)."""
    found: dict[str, str] = {}
    while len(found) < len(starts):
        line = process.wait_line(lambda text: any(text.startswith(s) for s in starts if s not in found))
        found[next(s for s in starts if s not in found and line.startswith(s))] = line
    return [found[s] for s in starts]


def wait_sequences(process: CLIProcess, *sequences: tuple[str, ...]) -> None:
    """Each sequence's lines (by their starts) in its own order; the sequences interleave freely
    (each is one session's re-INVITEs, and two sessions' answers race)."""
    pending = [list(sequence) for sequence in sequences]
    while any(pending):
        line = process.wait_line(lambda text: any(rest and text.startswith(rest[0]) for rest in pending))
        next(rest for rest in pending if rest and line.startswith(rest[0])).pop(0)


def test_switching_holds_the_call_left_and_resumes_it_unless_held_with_hold():
    with CLIProcess("session", "--auto-answer", "--account", "alice@127.0.0.1", *P2P) as alice, \
            CLIProcess("session", "--auto-answer", "--account", "carol@127.0.0.1", *P2P) as carol, \
            CLIProcess("session", "--account", "bob@127.0.0.1", *P2P) as bob:
        alice_uri, carol_uri, bob_uri = alice.address(), carol.address(), bob.address()
        bob.send(f"/call {alice_uri}")
        bob.wait_line("[1] established")
        alice.wait_line("[1] established")

        # a second call: the first goes on hold, and alice's side sees it (a re-INVITE with sendonly)
        bob.send(f"/call {carol_uri}")
        wait_lines(bob, "[1] putting on hold", "[1] on hold", "[2] established")
        alice.wait_line("[1] put on hold by the other party")
        carol.wait_line("[1] established")

        # back to alice: she is taken off hold (sendrecv again), carol is put on hold
        bob.send("/switch 1")
        assert bob.wait_line("[1] is the current session") == "[1] is the current session"
        alice.wait_line("[1] taken off hold by the other party")
        carol.wait_line("[1] put on hold by the other party")
        wait_lines(bob, "[1] off hold", "[2] on hold")

        # held on purpose with /hold: switching away and back leaves it held
        bob.send("/hold")
        bob.wait_line("[1] on hold")
        alice.wait_line("[1] put on hold by the other party")
        bob.send("/switch 2")
        carol.wait_line("[1] taken off hold by the other party")
        bob.wait_line("[2] off hold")
        bob.send("/switch 1")
        assert bob.wait_line("[1] is the current session") == \
            "[1] is the current session (on hold: /unhold resumes it)"
        bob.wait_line("[2] on hold")
        carol.wait_line("[1] put on hold by the other party")
        bob.send("/sessions")
        assert bob.wait_line("*[1]") == f"*[1] {alice_uri} ESTABLISHED audio, on hold"
        assert bob.wait_line("[2]") == f" [2] {carol_uri} ESTABLISHED audio, on hold"
        bob.send("/unhold")
        bob.wait_line("[1] off hold")
        alice.wait_line("[1] taken off hold by the other party")

        # there and straight back: what the first switch's re-INVITEs still block is sent once they are answered
        bob.send("/switch 2")
        bob.send("/switch 1")
        wait_sequences(bob, ("[1] on hold", "[1] off hold"), ("[2] off hold", "[2] on hold"))
        alice.wait_line("[1] put on hold by the other party")
        alice.wait_line("[1] taken off hold by the other party")
        bob.send("/sessions")
        assert bob.wait_line("*[1]") == f"*[1] {alice_uri} ESTABLISHED audio"
        assert bob.wait_line("[2]") == f" [2] {carol_uri} ESTABLISHED audio, on hold"

        # answering a third call holds the live one (alice) too
        with CLIProcess("session", bob_uri, "--account", "dave@127.0.0.1", *P2P) as dave:
            bob.wait_line("[3] incoming session from sip:dave@127.0.0.1")
            bob.send("/answer")
            bob.wait_line("[1] putting on hold")
            alice.wait_line("[1] put on hold by the other party")
            dave.wait_line("[1] established")
            bob.wait_line("[1] on hold")
            # when the live call ends, the keyboard goes to another session, which stays held until told
            bob.send("/hang")
            dave.wait_line("[1] ended by the other party")
            bob.wait_line("[3] ended")
            assert bob.next_line() == "[2] is the current session (on hold: /unhold resumes it)"
            bob.send("/quit")
            assert bob.finish()[0] == 0
            assert dave.finish()[0] == 0
        alice.wait_line("[1] ended by the other party")
        carol.wait_line("[1] ended by the other party")
        assert alice.finish()[0] == 0 and carol.finish()[0] == 0
    assert not [line for line in bob.lines + alice.lines + carol.lines if line.startswith("error")]


def test_held_call_goes_quiet_and_baresip_is_heard_again_after_switching_back(tmp_path, baresip_factory):
    peer = baresip_factory(user="bob")  # no registrar: called at its own address; it sends a 440 Hz tone
    recording = tmp_path / "call.wav"
    with CLIProcess("session", "--auto-answer", "--account", "carol@127.0.0.1", *P2P) as carol, \
            CLIProcess("session", "--account", "alice@127.0.0.1", *P2P) as alice:
        carol_uri = carol.address()
        alice.address()
        alice.send(f"/call {peer.uri}")
        alice.wait_line("[1] established")
        peer.ctrl.wait_event("CALL_ESTABLISHED")
        alice.send(f"/record {recording}")
        alice.wait_line("[1] recording to")
        # time on the clock of DTMF digits (0.35 s each), so the recording has a stretch of each phase
        alice.send("/dtmf 12")
        assert [peer.ctrl.wait_event("CALL_DTMF_START")["param"] for _ in range(2)] == ["1", "2"]

        alice.send(f"/call {carol_uri}")
        wait_lines(alice, "[1] on hold", "[2] established")
        carol.wait_line("[1] established")
        carol.send("/dtmf 123")
        alice.wait_line("[2] dtmf received: 3")

        alice.send("/switch 1")
        wait_lines(alice, "[1] off hold", "[2] on hold")
        alice.send("/dtmf 12")
        assert [peer.ctrl.wait_event("CALL_DTMF_START")["param"] for _ in range(2)] == ["1", "2"]
        alice.send("/record")
        alice.wait_line("[1] recording stopped")
        alice.send("/quit")
        assert alice.finish()[0] == 0
    samples, rate = read_wav(recording)
    window = rate // 20
    levels = [level_dbfs(samples[i:i + window]) for i in range(0, len(samples) - window + 1, window)]
    heard = "".join("T" if level > -40 else "." for level in levels)  # T: baresip's tone, 50 ms a letter
    # the tone, silence while held (baresip answers our sendonly with recvonly and stops), the tone again
    phases = re.fullmatch(r"\.{0,4}(T+)(\.+)(T+)\.{0,2}", heard)
    assert phases and all(len(phase) >= 6 for phase in phases.groups()), heard
    resumed = samples[phases.start(3) * window:phases.end(3) * window]
    assert abs(dominant_frequency(resumed, rate) - 440) < 10
