"""In-process fakes used by unit tests (a serial port, a scripted modem)."""
