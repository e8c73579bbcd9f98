"""Rendered messages out to WhatsApp, one at a time, never closer than the gap."""
