"""Messaging: accepting outbound texts, routing and sending them through modems, taking in
inbound PDUs, reassembly, opt-out keywords, delivery reports, and the event bus."""
