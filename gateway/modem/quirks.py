"""What differs between modem families, written down in one place, each with where it comes from.

The driver detects the family from ``AT+CGMI``/``AT+CGMM`` and asks these profiles instead of
testing the manufacturer all over the code. Sources are the families' public AT command manuals
(Huawei "HSPA/LTE Module AT Command Interface Specification", SIMCom "SIM800 Series AT Command
Manual", SIMCom "SIM7500/SIM7600 Series AT Command Manual", Quectel "EC25&EC21 AT Commands
Manual", Sierra Wireless "AirPrime MC/EM Series AT Command Reference", u-blox "SARA-G/U AT
Commands Manual") and public logs of these modems.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("huawei", "simcom", "quectel", "sierra", "ublox", "generic")


@dataclass(frozen=True)
class Quirks:
    """The habits of one modem family that the driver must follow."""

    family: str
    # (command, prefix of the answer line or "" for a bare value), tried in order.
    iccid_commands: tuple[tuple[str, str], ...]
    # Message memories to select with AT+CPMS, best first (filtered by what AT+CPMS=? offers).
    storage_preference: tuple[str, ...]
    # Commands that restart the modem, tried in order until one is accepted.
    reset_commands: tuple[str, ...]
    # USSD strings go to and come from the modem as packed GSM 7-bit in hex (not as text).
    ussd_packed_hex: bool = False


# Read EF_ICCID (file 2FE2) through restricted SIM access: every 27.007 modem has AT+CRSM; the
# answer is the raw file, digits nibble-swapped. The last resort when no family command works.
_CRSM_ICCID = ("AT+CRSM=176,12258,0,0,10", "+CRSM")

_PROFILES: dict[str, Quirks] = {
    # Huawei E173/E3372 (stick mode): AT^ICCID? answers "^ICCID: <swapped digits>" (the raw
    # EF_ICCID order). ^RSSI/^BOOT/^MODE/^SIMST/^SRVST URCs come on the AT port at any time, even
    # before the echo of a command (handled by the channel). USSD: the "PC UI" port expects and
    # returns the string as packed 7-bit hex (AT+CUSD=1,"AA180C3602",15). Storage index 0 is valid.
    # Reset: AT^RESET on E3372 firmwares; E173 takes AT+CFUN=16. Both re-enumerate the USB device.
    "huawei": Quirks(
        family="huawei",
        iccid_commands=(("AT^ICCID?", "^ICCID"), ("AT+CCID", "+CCID"), _CRSM_ICCID),
        storage_preference=("SM", "ME"),
        reset_commands=("AT^RESET", "AT+CFUN=16", "AT+CFUN=1,1"),
        ussd_packed_hex=True,
    ),
    # SIMCom SIM800: AT+CCID answers the bare ICCID; "RDY", "+CPIN: READY", "Call Ready",
    # "SMS Ready" at boot and SMS commands answer ERROR until "SMS Ready"; may boot in text mode
    # from a saved profile; reading an empty slot answers a bare OK; says nothing when storage is
    # full (the driver polls AT+CPMS?). SIM7600: AT+CICCID answers "+ICCID: ...", "PB DONE"/"SMS
    # DONE" at boot. Reset: AT+CFUN=1,1 (SIM800 on a UART keeps the port; SIM7600 re-enumerates).
    "simcom": Quirks(
        family="simcom",
        iccid_commands=(("AT+CCID", ""), ("AT+CICCID", "+ICCID"), _CRSM_ICCID),
        storage_preference=("SM", "ME"),
        reset_commands=("AT+CFUN=1,1",),
    ),
    # Quectel EC25: AT+QCCID answers "+QCCID: ..."; "RDY", "+CPIN: READY", "+QUSIM: 1",
    # "+QIND: SMS DONE" at boot, SMS commands answer ERROR before it; default storage ME with
    # index 0 valid (Qualcomm); AT+CFUN=1,1 resets and re-enumerates USB.
    "quectel": Quirks(
        family="quectel",
        iccid_commands=(("AT+QCCID", "+QCCID"), ("AT+CCID", "+CCID"), _CRSM_ICCID),
        storage_preference=("ME", "SM"),
        reset_commands=("AT+CFUN=1,1",),
    ),
    # Sierra Wireless MC7455 and kin: AT!ICCID? answers "ICCID: ..." (some firmwares
    # "!ICCID: ..."); AT+ICCID also; index 0 valid; "+CMGR: <stat>,<length>" with no alpha field;
    # AT!RESET restarts (needs no unlock, unlike most "!" commands).
    "sierra": Quirks(
        family="sierra",
        iccid_commands=(("AT!ICCID?", "ICCID"), ("AT+ICCID", "ICCID"), _CRSM_ICCID),
        storage_preference=("SM", "ME"),
        reset_commands=("AT!RESET", "AT+CFUN=1,1"),
    ),
    # u-blox SARA-G/U: AT+CCID answers "+CCID: ..."; "+CMS ERROR" may come without a number;
    # AT+CFUN=16 is the documented silent reset (AT+CFUN=1,1 is refused on some firmwares).
    "ublox": Quirks(
        family="ublox",
        iccid_commands=(("AT+CCID", "+CCID"), _CRSM_ICCID),
        storage_preference=("ME", "SM"),
        reset_commands=("AT+CFUN=16", "AT+CFUN=1,1"),
    ),
    "generic": Quirks(
        family="generic",
        iccid_commands=(("AT+CCID", "+CCID"), ("AT+ICCID", "+ICCID"), _CRSM_ICCID),
        storage_preference=("SM", "ME", "MT"),
        reset_commands=("AT+CFUN=1,1",),
    ),
}


def quirks_for(family: str) -> Quirks:
    """The profile of a family name (one of :data:`FAMILIES`); unknown names get ``generic``."""
    return _PROFILES.get(family, _PROFILES["generic"])


def detect_family(manufacturer: str, model: str = "") -> str:
    """The family from the ``AT+CGMI`` and ``AT+CGMM`` answers (case and decoration ignored)."""
    text = f"{manufacturer} {model}".lower()
    if "huawei" in text:
        return "huawei"
    if "simcom" in text or "sim800" in text or "sim7600" in text or "sim900" in text:
        return "simcom"
    if "quectel" in text or text.strip().startswith(("ec25", "ec21", "eg25")):
        return "quectel"
    if "sierra" in text:
        return "sierra"
    if "u-blox" in text or "ublox" in text:
        return "ublox"
    return "generic"
