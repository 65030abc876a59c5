"""Family profiles: what makes a simulated Huawei answer like a Huawei and a SIM800 like a SIM800.

Each quirk is taken from the family's public AT command manual or from public logs of that
hardware, and is written down here once; the interpreter only asks the profile.

=========  ===========================================================================
huawei     E173/E3372 (stick mode). Echo ends in CR; a pending URC (``^RSSI``, ``^BOOT``) goes
           out before the echo of the next command; ``^RSSI``/``^BOOT``/``^MODE``/``^SIMST``
           URCs; CREG location codes as unquoted hex; ``^SMMEMFULL`` when storage fills;
           ``AT^ICCID?`` shows the ICCID nibble-swapped as EF_ICCID stores it; USSD strings are
           packed GSM 7-bit hex both ways; storage index 0 is valid; a reset re-enumerates USB.
simcom     SIM800 on a CP2102 USB-UART bridge. ``RDY``/``Call Ready``/``SMS Ready`` at boot and
           SMS commands answer ``ERROR`` until ``SMS Ready``; boots in text mode (a saved
           ``AT&W`` profile); silent when storage is full; reading an empty slot answers a bare
           ``OK``; ``+CMGR: 0,"",29`` headers; no ``+CEREG`` (2G); ``AT+CCID`` answers the
           bare ICCID; no ``AT+CLAC``; a reset keeps the UART (the port does not go away, the
           boot URCs and echo come back on it).
quectel    EC25. ``RDY``, ``+QUSIM``, ``+QIND: SMS DONE`` (SMS commands answer ``ERROR`` until
           then); storage index 0 is valid; default storage ``ME``; ``AT+QCCID``; LTE (act 7).
sierra     MC7455. Few URCs; ``AT!ICCID?`` and ``AT+ICCID``; index 0 valid.
ublox      SARA-U270. ``AT+CCID`` answers ``+CCID: ...``; 3G.
generic    A plain 27.005/27.007 modem with none of the above.
=========  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

FAMILIES = ("huawei", "simcom", "quectel", "sierra", "ublox", "generic")


@dataclass(frozen=True)
class Family:
    """The answers and habits of one modem family (see the module docstring)."""

    name: str
    manufacturer: str  # AT+CGMI
    model: str  # AT+CGMM
    revision: str  # AT+CGMR
    usb_vendor: str  # the by-id link name: usb-<usb_vendor>_<usb_model>_<serial>-<interface>-port0
    usb_model: str
    interface: str = "if00"
    ati: tuple[str, ...] = ()  # ATI lines; "{imei}" is substituted
    echo_suffix: str = "\r"
    urc_before_echo: bool = False
    boot_urcs: tuple[str, ...] = ()  # right after power-on
    sim_ready_urcs: tuple[str, ...] = ()  # when the SIM is unlocked (at boot or after AT+CPIN)
    sms_ready_urcs: tuple[str, ...] = ()  # when SMS becomes usable, boot_time after the SIM
    sms_gated: bool = False  # SMS commands answer ERROR until sms_ready_urcs went out
    boot_time: float = 0.0  # seconds from SIM ready to SMS ready (the default of add_modem)
    boot_text_mode: bool = False
    first_index: int = 1
    default_cpms: tuple[str, str, str] = ("SM", "SM", "SM")
    default_cnmi: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    empty_read_ok: bool = False  # AT+CMGR on an empty slot: bare OK instead of +CMS ERROR: 321
    cmgr_header: str = "{stat},,{length}"
    cmgl_header: str = "{index},{stat},,{length}"
    cmt_alpha: str = ""  # what stands in the <alpha> field of +CMT
    memory_full_urc: str | None = None
    iccid_commands: dict[str, str] = field(default_factory=dict)  # "NAME kind" -> format
    creg_hex_unquoted: bool = False
    access_technology: int | None = None  # <act> in +COPS / +CREG, None when not shown
    supports_cereg: bool = False
    reset_reenumerates: bool = True  # AT+CFUN=1,1 makes the USB device go away and come back
    ussd_hex: bool = False
    clac: tuple[str, ...] | None = None  # AT+CLAC answer, None when unsupported
    signal_urc: str | None = None  # format of an unsolicited signal report, "{rssi}"
    chatter_urcs: tuple[str, ...] = ()  # what the modem says on its own every chatter interval
    cnum_suffix: str = ""
    battery: str | None = None  # AT+CBC answer; None: no battery measurement (USB powered)


_BASIC_CLAC = (
    "+CGMI",
    "+CGMM",
    "+CGMR",
    "+CGSN",
    "+CIMI",
    "+CMGS",
    "+CMGR",
    "+CMGL",
    "+CMGD",
    "+CNMI",
    "+CPMS",
    "+CSCS",
    "+CNUM",
    "+CUSD",
)

PROFILES: dict[str, Family] = {
    "huawei": Family(
        name="huawei",
        manufacturer="huawei",
        model="E173",
        revision="11.126.85.00.209",
        usb_vendor="HUAWEI_Technology",
        usb_model="HUAWEI_Mobile",
        ati=(
            "Manufacturer: huawei",
            "Model: E173",
            "Revision: 11.126.85.00.209",
            "IMEI: {imei}",
            "+GCAP: +CGSM,+DS,+ES",
        ),
        urc_before_echo=True,
        boot_urcs=("^BOOT:20254651,0,0,0,72",),
        sim_ready_urcs=("^SIMST:1", "^SRVST:2", "^MODE:5,4"),
        first_index=0,
        memory_full_urc='^SMMEMFULL: "SM"',
        iccid_commands={"^ICCID read": "^ICCID: {iccid_swapped}"},
        creg_hex_unquoted=True,
        access_technology=2,
        ussd_hex=True,
        clac=(*_BASIC_CLAC, "^ICCID", "^USSDMODE", "^DTMF", "^CVOICE"),
        signal_urc="^RSSI:{rssi}",
        chatter_urcs=("^BOOT:20254651,0,0,0,72", "^RSSI:{rssi}"),
    ),
    "simcom": Family(
        name="simcom",
        manufacturer="SIMCOM_Ltd",
        model="SIMCOM_SIM800",
        revision="Revision:1418B04SIM800L24",
        usb_vendor="Silicon_Labs",
        usb_model="CP2102_USB_to_UART_Bridge_Controller",
        ati=("SIM800 R14.18",),
        boot_urcs=("RDY", "+CFUN: 1"),
        sim_ready_urcs=("+CPIN: READY",),
        sms_ready_urcs=("Call Ready", "SMS Ready"),
        sms_gated=True,
        boot_time=0.2,
        boot_text_mode=True,
        default_cnmi=(2, 1, 0, 0, 0),
        empty_read_ok=True,
        cmgr_header='{stat},"",{length}',
        cmgl_header='{index},{stat},"",{length}',
        cmt_alpha='""',
        iccid_commands={"+CCID action": "{iccid}"},
        reset_reenumerates=False,
        cnum_suffix=",7,4",
        battery="+CBC: 0,85,4012",  # <bcs>,<bcl> %,<voltage> mV of the supply
    ),
    "quectel": Family(
        name="quectel",
        manufacturer="Quectel",
        model="EC25",
        revision="EC25EFAR06A06M4G",
        usb_vendor="Quectel",
        usb_model="EC25",
        interface="if02",
        ati=("Quectel", "EC25", "Revision: EC25EFAR06A06M4G"),
        boot_urcs=("RDY",),
        sim_ready_urcs=("+CPIN: READY", "+QUSIM: 1"),
        sms_ready_urcs=("+QIND: SMS DONE", "+QIND: PB DONE"),
        sms_gated=True,
        boot_time=0.2,
        first_index=0,
        default_cpms=("ME", "ME", "ME"),
        default_cnmi=(2, 1, 0, 0, 0),
        iccid_commands={"+QCCID action": "+QCCID: {iccid}", "+CCID action": "+CCID: {iccid}"},
        access_technology=7,
        supports_cereg=True,
        clac=(*_BASIC_CLAC, "+QCCID", "+QINDCFG"),
        battery="+CBC: 0,85,3950",
    ),
    "sierra": Family(
        name="sierra",
        manufacturer="Sierra Wireless, Incorporated",
        model="MC7455",
        revision="SWI9X30C_02.24.05.06",
        usb_vendor="Sierra_Wireless__Incorporated",
        usb_model="MC7455",
        interface="if03",
        ati=(
            "Manufacturer: Sierra Wireless, Incorporated",
            "Model: MC7455",
            "Revision: SWI9X30C_02.24.05.06",
            "IMEI: {imei}",
        ),
        first_index=0,
        iccid_commands={"!ICCID read": "ICCID: {iccid}", "+ICCID action": "ICCID: {iccid}"},
        access_technology=7,
        supports_cereg=True,
        clac=_BASIC_CLAC,
    ),
    "ublox": Family(
        name="ublox",
        manufacturer="u-blox",
        model="SARA-U270",
        revision="23.41",
        usb_vendor="u-blox_AG",
        usb_model="SARA-U270",
        ati=("u-blox", "SARA-U270", "23.41"),
        iccid_commands={"+CCID action": "+CCID: {iccid}", "+CCID read": "+CCID: {iccid}"},
        access_technology=2,
        clac=_BASIC_CLAC,
    ),
    "generic": Family(
        name="generic",
        manufacturer="Generic",
        model="GSM Modem",
        revision="1.0",
        usb_vendor="Generic",
        usb_model="GSM_Modem",
        ati=("Generic GSM Modem",),
        default_cnmi=(1, 1, 0, 0, 0),
        iccid_commands={"+CCID action": "+CCID: {iccid}", "+ICCID action": "+ICCID: {iccid}"},
        clac=_BASIC_CLAC,
    ),
}


def family(name: str) -> Family:
    """The profile of a family by name; ValueError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown modem family {name!r}; known: {', '.join(FAMILIES)}") from None
