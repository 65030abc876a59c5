"""SMS over the simulated network: sending with AT+CMGS, receiving with +CMTI/+CMT, reading and
deleting, status reports, storage limits, multipart reassembly, modem to modem."""

from __future__ import annotations

import re

import pytest

from gateway.modem import pdu as codec
from gateway.sim import Network
from gateway.sim.terminal import Terminal

LONG = "The quick brown fox jumps over the lazy dog. " * 7  # 3 GSM-7 parts


@pytest.fixture
def net(tmp_path):
    with Network(tmp_path, seed=3, status_report_delay=0) as network:
        yield network


def ready(modem, cnmi: str | None = None) -> Terminal:
    t = Terminal(modem.port)
    t.command("ATE0")
    t.command("AT+CMGF=0")
    if cnmi:
        t.command(f"AT+CNMI={cnmi}")
    return t


def send_pdu(t: Terminal, part: codec.SubmitPart) -> str:
    """Everything the modem said from AT+CMGS to its final result (URCs included)."""
    before = t.command(f"AT+CMGS={part.length}")
    assert before.endswith("\r\n> ")
    t.write(part.pdu + "\x1a")
    t.expect(rb"\r\n(\+CMGS: \d+\r\n\r\nOK|\+CMS ERROR[^\r]*)\r\n")
    return before + t.consumed.decode()


def cmti(t: Terminal) -> tuple[str, int]:
    m = t.expect(rb'\+CMTI: "(\w+)",(\d+)\r\n')
    return m.group(1).decode(), int(m.group(2))


def test_cmgs_prompt_and_incrementing_reference(net):
    m = net.add_modem(family="generic", number="+15550000001")
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        part = codec.encode_submit(h.number, "hello handset")[0]
        t.write(f"AT+CMGS={part.length}\r")
        t.expect(rb"\r\n> $")  # the prompt has no line end
        t.write(part.pdu + "\x1a")
        first = int(t.expect(rb"\r\n\+CMGS: (\d+)\r\n\r\nOK\r\n").group(1))
        second = int(re.search(r"\+CMGS: (\d+)", send_pdu(t, part)).group(1))
    assert second == (first + 1) % 256
    assert [s.reference for s in m.sent] == [first, second]
    msg = h.wait_for_message()
    assert (msg.sender, msg.text) == ("+15550000001", "hello handset")


def test_mr_wraps_at_256(net):
    m = net.add_modem(family="generic")
    m._next_mr = 255
    part = codec.encode_submit("+15551230009", "x")[0]
    with ready(m) as t:
        assert "+CMGS: 255" in send_pdu(t, part)
        assert "+CMGS: 0" in send_pdu(t, part)


def test_echo_on_shows_the_pdu_typed(net):
    m = net.add_modem(family="generic")
    part = codec.encode_submit("+15551230009", "x")[0]
    with Terminal(m.port) as t:
        t.command("AT+CMGF=0")
        assert t.command(f"AT+CMGS={part.length}") == f"AT+CMGS={part.length}\r\r\n> "
        t.write(part.pdu + "\x1a")
        t.expect(rb"\+CMGS: \d+\r\n\r\nOK\r\n")
        assert t.consumed.startswith(part.pdu.encode() + b"\r\n+CMGS:")


def test_esc_aborts_the_send(net):
    m = net.add_modem(family="generic")
    part = codec.encode_submit("+15551230009", "never")[0]
    with ready(m) as t:
        t.command(f"AT+CMGS={part.length}")
        t.write(part.pdu[:10] + "\x1b")
        t.expect(rb"^\r\nOK\r\n")
        assert t.command("AT") == "\r\nOK\r\n"
    assert m.sent == [] and net.traffic == []


def test_bad_pdus_are_rejected_with_304(net):
    m = net.add_modem(family="generic")
    part = codec.encode_submit("+15551230009", "x")[0]
    with ready(m) as t:
        t.command(f"AT+CMGS={part.length + 1}")
        t.write(part.pdu + "\x1a")
        t.expect(rb"\r\n\+CMS ERROR: 304\r\n")
        t.command(f"AT+CMGS={part.length}")
        t.write("ZZ" * part.length + "\x1a")
        t.expect(rb"\r\n\+CMS ERROR: 304\r\n")
        assert "+CMS ERROR: 304" in t.command("AT+CMGS=2")
    assert m.sent == []


def test_cmti_then_list_read_delete(net):
    m = net.add_modem(family="generic")  # boots with CNMI=1,1: +CMTI
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        h.send(m.number, "first")
        assert cmti(t) == ("SM", 1)
        h.send(m.number, "second")
        assert cmti(t) == ("SM", 2)
        listing = t.command("AT+CMGL=0")
        rows = re.findall(r"\+CMGL: (\d+),0,,(\d+)\r\n([0-9A-F]+)\r\n", listing)
        assert [int(r[0]) for r in rows] == [1, 2]
        texts = [codec.decode(r[2]).text for r in rows]
        assert texts == ["first", "second"]
        assert int(rows[0][1]) == len(rows[0][2]) // 2 - 8  # TPDU length excludes the SMSC
        assert t.command("AT+CMGL=0") == "\r\nOK\r\n"  # now read
        assert re.search(r"\+CMGR: 1,,\d+\r\n", t.command("AT+CMGR=1"))
        assert t.command("AT+CMGD=1") == "\r\nOK\r\n"
        assert "+CMS ERROR: 321" in t.command("AT+CMGR=1")
        assert "+CMGL: 2,1,," in t.command("AT+CMGL=4")
        assert "+CMS ERROR: 321" in t.command("AT+CMGR=31")
        assert "+CMS ERROR: 302" in t.command('AT+CMGL="ALL"')
    assert [s["index"] for s in m.stored()] == [2]


def test_cmgd_flags(net):
    m = net.add_modem(family="generic")
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        for text in ("a", "b", "c"):
            h.send(m.number, text)
            cmti(t)
        t.command("AT+CMGR=2")
        t.command("AT+CMGD=1,1")  # delete all read ones
        assert [s["index"] for s in m.stored()] == [1, 3]
        t.command("AT+CMGD=1,4")
        assert m.stored() == []


@pytest.mark.parametrize(
    ("family", "first", "header", "empty"),
    [
        ("simcom", 1, r'\+CMGR: 0,"",\d+', "\r\nOK\r\n"),
        ("quectel", 0, r"\+CMGR: 0,,\d+", "\r\n+CMS ERROR: 321\r\n"),
        ("sierra", 0, r"\+CMGR: 0,,\d+", "\r\n+CMS ERROR: 321\r\n"),
        ("huawei", 0, r"\+CMGR: 0,,\d+", "\r\n+CMS ERROR: 321\r\n"),
    ],
)
def test_family_storage_quirks(net, family, first, header, empty):
    m = net.add_modem(family=family, boot_time=0)
    h = net.add_handset("+15551230001")
    with ready(m, cnmi="2,1,0,0,0") as t:
        t.command('AT+CPMS="SM","SM","SM"')
        h.send(m.number, "quirk")
        assert cmti(t) == ("SM", first)
        assert t.command(f"AT+CMGR={first + 1}") == empty
        assert re.search(header, t.command(f"AT+CMGR={first}"))


def test_cmti_names_the_receive_memory_not_the_read_one(net):
    m = net.add_modem(family="quectel", boot_time=0)  # default storage ME for all three
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        t.command('AT+CPMS="SM"')  # only <mem1> changes
        h.send(m.number, "where am I")
        assert cmti(t) == ("ME", 0)
        assert t.command("AT+CMGL=4") == "\r\nOK\r\n"  # SM is empty
        t.command('AT+CPMS="ME"')
        assert "+CMGL: 0,0,," in t.command("AT+CMGL=4")


def test_multipart_arrives_out_of_order_and_reassembles(net):
    m = net.add_modem(family="generic", storage_capacity=10)
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        pdus = h.send(m.number, LONG, reorder=True)
        assert len(pdus) == 3
        indexes = [cmti(t)[1] for _ in pdus]
        parts = []
        for i in indexes:
            out = t.command(f"AT+CMGR={i}")
            parts.append(codec.decode(out.split("\r\n")[2]))
    seqs = [p.concat.seq for p in parts]
    assert sorted(seqs) == [1, 2, 3] and seqs != [1, 2, 3]
    assert len({p.concat.reference for p in parts}) == 1
    assert "".join(p.text for p in sorted(parts, key=lambda p: p.concat.seq)) == LONG


def test_reordering_is_deterministic_by_seed(tmp_path):
    def orders(path):
        with Network(path, seed=11, reorder_probability=0.5) as n:
            m = n.add_modem(family="generic", storage_capacity=50)
            h = n.add_handset("+15551230001")
            return [[codec.decode(p).concat.seq for p in h.send(m.number, LONG)] for _ in range(6)]

    a = orders(tmp_path / "a")
    assert a == orders(tmp_path / "b")
    assert [1, 2, 3] in a and any(o != [1, 2, 3] for o in a)


def test_handset_reassembles_a_multipart_from_the_modem(net):
    m = net.add_modem(family="generic")
    h = net.add_handset("+15551230001")
    parts = codec.encode_submit(h.number, LONG + "🙂")
    assert len(parts) > 1
    with ready(m) as t:
        for part in reversed(parts):  # the handset does not care about the order
            send_pdu(t, part)
    msg = h.wait_for_message()
    assert msg.text == LONG + "🙂" and msg.parts == len(parts) and msg.sender == m.number
    assert h.inbox == [msg]


def test_cmt_direct_delivery_needs_cnma_with_csms_1(net):
    m = net.add_modem(family="generic", cnma_timeout=0.3)
    h = net.add_handset("+15551230001")
    with ready(m, cnmi="2,2,0,0,0") as t:
        assert "+CSMS: 1,1,1" in t.command("AT+CSMS=1")
        assert "+CMS ERROR: 340" in t.command("AT+CNMA")
        h.send(m.number, "one")
        h.send(m.number, "two")
        first = t.expect(rb"\r\n\+CMT: ,(\d+)\r\n([0-9A-F]+)\r\n")
        assert codec.decode(first.group(2).decode()).text == "one"
        # "two" waits for the acknowledgement; without it "one" comes again.
        again = t.expect(rb"\r\n\+CMT: ,(\d+)\r\n([0-9A-F]+)\r\n")
        assert again.group(2) == first.group(2)
        assert t.command("AT+CNMA") == "\r\nOK\r\n"
        second = t.expect(rb"\r\n\+CMT: ,\d+\r\n([0-9A-F]+)\r\n")
        assert codec.decode(second.group(1).decode()).text == "two"
        assert t.command("AT+CNMA") == "\r\nOK\r\n"
    assert m.stored() == []


def test_cmt_without_csms_needs_no_ack(net):
    m = net.add_modem(family="simcom", boot_time=0)
    h = net.add_handset("+15551230001")
    with ready(m, cnmi="2,2,0,0,0") as t:
        h.send(m.number, "one")
        h.send(m.number, "two")
        t.expect(rb'\+CMT: "",\d+\r\n[0-9A-F]+\r\n')  # SIM800 puts "" in the alpha field
        t.expect(rb'\+CMT: "",\d+\r\n[0-9A-F]+\r\n')


def test_status_report_as_cds_with_the_part_reference(net):
    m = net.add_modem(family="generic")
    h = net.add_handset("+15551230001")
    with ready(m, cnmi="2,1,0,1,0") as t:
        part = codec.encode_submit(h.number, "report me", status_report=True)[0]
        mr = int(re.search(r"\+CMGS: (\d+)", send_pdu(t, part)).group(1))
        match = t.expect(rb"\r\n\+CDS: (\d+)\r\n([0-9A-F]+)\r\n")
        report = codec.decode(match.group(2).decode())
    assert isinstance(report, codec.StatusReport)
    assert report.reference == mr and report.number == h.number and report.delivered


def test_no_report_unless_requested(net):
    m = net.add_modem(family="generic")
    h = net.add_handset("+15551230001")
    with ready(m, cnmi="2,1,0,1,0") as t:
        send_pdu(t, codec.encode_submit(h.number, "quiet")[0])
        h.wait_for_message()
        assert t.command("AT") == "\r\nOK\r\n"  # nothing came in between


def test_status_report_stored_with_cdsi(net):
    m = net.add_modem(family="generic")
    h = net.add_handset("+15551230001")
    with ready(m, cnmi="2,1,0,2,0") as t:
        part = codec.encode_submit(h.number, "store the report", status_report=True)[0]
        mr = int(re.search(r"\+CMGS: (\d+)", send_pdu(t, part)).group(1))
        index = int(t.expect(rb'\+CDSI: "SM",(\d+)\r\n').group(1))
        out = t.command(f"AT+CMGR={index}")
    report = codec.decode(out.split("\r\n")[2])
    assert report.reference == mr


def test_status_report_dropped_when_ds_0(net):
    m = net.add_modem(family="generic")
    h = net.add_handset("+15551230001")
    with ready(m, cnmi="2,1,0,0,0") as t:
        send_pdu(t, codec.encode_submit(h.number, "x", status_report=True)[0])
        h.wait_for_message()
        assert t.command("AT") == "\r\nOK\r\n"
    assert m.dropped_status_reports == 1


def test_modem_to_modem_with_report(net):
    a = net.add_modem(family="generic", number="+15550000001")
    b = net.add_modem(family="quectel", number="+15550000002", boot_time=0)
    parts = codec.encode_submit(b.number, LONG, status_report=True)
    with ready(a, cnmi="2,1,0,1,0") as ta, ready(b) as tb:
        outputs = [send_pdu(ta, p) for p in parts]
        refs = [int(re.search(r"\+CMGS: (\d+)", out).group(1)) for out in outputs]
        # Reports of earlier parts come in among the later sends' answers.
        seen = re.findall(r"\+CDS: \d+\r\n([0-9A-F]+)\r\n", "".join(outputs))
        slots = [cmti(tb) for _ in parts]
        assert {mem for mem, _ in slots} == {"ME"}  # the EC25's default storage
        got = [codec.decode(tb.command(f"AT+CMGR={i}").split("\r\n")[2]) for _, i in slots]
        while len(seen) < len(parts):
            seen.append(ta.expect(rb"\+CDS: \d+\r\n([0-9A-F]+)\r\n").group(1).decode())
        reports = [codec.decode(r) for r in seen]
    assert {g.number for g in got} == {a.number}
    assert "".join(g.text for g in sorted(got, key=lambda g: g.concat.seq)) == LONG
    assert sorted(r.reference for r in reports) == sorted(refs)


def test_storage_full_holds_messages_until_space(net):
    m = net.add_modem(family="generic", storage_capacity=2)
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        for text in ("a", "b", "c"):
            h.send(m.number, text)
        assert cmti(t) == ("SM", 1)
        assert cmti(t) == ("SM", 2)
        assert "+CPMS: 2,2" in t.command('AT+CPMS="SM","SM","SM"')
        assert t.command("AT") == "\r\nOK\r\n"  # "c" waits in the network
        t.command("AT+CMGD=1")
        assert cmti(t) == ("SM", 1)
    assert [codec.decode(s["pdu"]).text for s in m.stored()] == ["c", "b"]


def test_huawei_says_smmemfull_simcom_says_nothing(net):
    hw = net.add_modem(family="huawei", storage_capacity=1)
    sc = net.add_modem(family="simcom", storage_capacity=1, boot_time=0)
    h = net.add_handset("+15551230001")
    with ready(hw, cnmi="2,1,0,0,0") as t:
        h.send(hw.number, "a")
        h.send(hw.number, "b")
        cmti(t)
        t.expect(rb'\r\n\^SMMEMFULL: "SM"\r\n')
    with ready(sc) as t:
        h.send(sc.number, "a")
        h.send(sc.number, "b")
        cmti(t)
        assert t.command("AT") == "\r\nOK\r\n"


def test_storage_full_fault(net):
    m = net.add_modem(family="generic")
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        m.set_fault("storage_full")
        h.send(m.number, "later")
        assert t.command("AT") == "\r\nOK\r\n"
        m.clear_fault("storage_full")
        assert cmti(t) == ("SM", 1)


def test_simcom_boots_in_text_mode_and_gates_sms_until_ready(net):
    m = net.add_modem(family="simcom", boot_time=30)
    with Terminal(m.port) as t:
        t.command("ATE0")
        assert "+CMGF: 1" in t.command("AT+CMGF?")
        assert t.command("AT+CPMS?") == "\r\nERROR\r\n"
        assert t.command("AT+CMGL=4") == "\r\nERROR\r\n"


def test_simcom_reset_keeps_the_port_and_says_sms_ready(net):
    m = net.add_modem(family="simcom", boot_time=0.05, reset_time=0.05)
    device = m.device
    with Terminal(m.port) as t:
        t.command("ATE0")
        assert t.command("AT+CFUN=1,1") == "\r\nOK\r\n"
        t.expect(rb"\r\nRDY\r\n")
        t.expect(rb"\r\nSMS Ready\r\n")
        assert t.command("AT") == "AT\r\r\nOK\r\n"  # echo is back on after the reset
        assert "+CPMS:" in t.command("AT+CPMS?")
    assert m.device == device


def test_text_mode_send_and_list(net):
    m = net.add_modem(family="simcom", boot_time=0)
    h = net.add_handset("+15551230001")
    with Terminal(m.port) as t:
        t.command("ATE0")
        assert t.command(f'AT+CMGS="{h.number}"') == "\r\n> "
        t.write("plain text\x1a")
        t.expect(rb"\+CMGS: \d+\r\n\r\nOK\r\n")
        assert h.wait_for_message().text == "plain text"
        h.send(m.number, "back to you")
        cmti(t)
        out = t.command('AT+CMGL="ALL"')
        assert f'+CMGL: 1,"REC UNREAD","{h.number}",,"' in out
        assert out.endswith('"\r\nback to you\r\n\r\nOK\r\n')


def test_pdu_typed_in_text_mode_goes_out_as_text(net):
    """A driver that forgets AT+CMGF=0 on a modem that booted in text mode: the modem takes the
    length for a phone number and the hex for the text, as real ones do."""
    m = net.add_modem(family="simcom", boot_time=0)
    part = codec.encode_submit("+15551230001", "x")[0]
    with Terminal(m.port) as t:
        t.command("ATE0")
        t.command(f"AT+CMGS={part.length}")
        t.write(part.pdu + "\x1a")
        t.expect(rb"\+CMGS: \d+\r\n\r\nOK\r\n")
    # The network carries the hex as text to the number "14", which nobody has (no handset is
    # invented for it: the simulator's default, as on a real network).
    [carried] = [e for e in net.traffic if e["kind"] == "text"]
    assert (carried["to"], carried["text"]) == (str(part.length), part.pdu)
    assert net.handsets == []
