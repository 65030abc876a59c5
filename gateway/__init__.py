"""SMS gateway appliance: USB GSM modems driven over AT commands, a store and a web app."""

__version__ = "0.1.0"
