"""Serial simulator: a virtual GSM network with virtual modems on pseudo-terminals and virtual
handsets, for tests, the demo and ``gateway sim``.

Each modem is served on a pty in raw mode, so pyserial opens it like a device, and speaks AT
commands byte for byte like its family's hardware (see :mod:`.families`). Messages really
travel: a handset's text becomes SMS-DELIVER PDUs in the modem's storage (+CMTI) or on the line
(+CMT); an SMS-SUBMIT written after AT+CMGS reaches a handset's inbox or another modem, and a
status report comes back when it was requested.

Python API::

    from gateway.sim import Network

    with Network(base_dir, seed=0) as net:         # base_dir/by-id/: one stable link per modem
        m = net.add_modem(family="huawei",           # huawei|simcom|quectel|sierra|ublox|generic
                          number="+15550000001",     # None: +1555000NNNN
                          imei=None, iccid=None, imsi=None,   # None: generated, Luhn-valid
                          pin=None,                  # a PIN the SIM asks for at every boot
                          storage_capacity=30,       # slots in SM and in ME each
                          command_latency=0.0, send_latency=0.0,
                          boot_time=None,            # s to "SMS Ready" (None: family default)
                          urc_pdu_gap=0.0,           # s between a +CMT/+CDS line and its PDU
                          chatter_interval=None)     # s between unprompted ^BOOT/^RSSI (Huawei)
        m.port        # the by-id symlink (follows the pty across unplugs and resets)
        m.device      # the /dev/pts/N it points at now (None while unplugged)
        m.imei, m.iccid, m.imsi, m.number, m.family
        net.serve_number("55123", m)                 # a short code routed to this modem
        h = net.add_handset("+15551230001")           # auto_handsets=False (default): only
                                                       # numbers added here exist
        h.send(to="+15550000001", text="hello")       # -> the PDUs, in delivery order
        h.inbox                                        # [InboxMessage(sender, text, time, parts)]
        h.wait_for_message(timeout=5.0, predicate=None)  # next one not returned before
        m.set_fault("hang"|"unplug"|"garbage"|"cms_error"|"no_network"|"pin"|"storage_full"
                    |"slow", when="now", **params)     # parameters: SimModem.set_fault
        #   when: "now", or armed for the next send: "send" (AT+CMGS arrived, unanswered),
        #   "prompt" ("> " sent), "submitted" (the network has the part, no answer yet),
        #   "between_parts" (after a part that is not the last); m.armed, m.wait_fired()
        m.clear_fault(kind=None); m.replug(); m.wait_plugged(timeout)
        m.stored()      # [{"memory", "index", "stat", "kind", "pdu"}]
        m.sent          # [SubmittedPart(reference, destination, pdu, status_report_request)]
        m.set_signal(rssi); m.inject_urc(text, where="now"|"before_echo"|"in_response")
        net.modem(imei_or_number), net.handset(number), net.modems, net.handsets
        net.clock.now(), net.traffic

The control API (:class:`SimControl`, and :class:`ControlServer` for JSON over HTTP on
loopback) drives the same objects from the CLI, the daemon and the web app.
"""

from gateway.sim.control import ControlServer, SimControl
from gateway.sim.errors import (
    DuplicateNumber,
    FaultError,
    NoSuchNumber,
    PortError,
    SimError,
    UnknownHandset,
    UnknownModem,
)
from gateway.sim.families import FAMILIES
from gateway.sim.handset import Handset, InboxMessage
from gateway.sim.modem import FAULT_KINDS, SimModem
from gateway.sim.network import Network

__all__ = [
    "FAMILIES",
    "FAULT_KINDS",
    "ControlServer",
    "DuplicateNumber",
    "FaultError",
    "Handset",
    "InboxMessage",
    "Network",
    "NoSuchNumber",
    "PortError",
    "SimControl",
    "SimError",
    "SimModem",
    "UnknownHandset",
    "UnknownModem",
]
