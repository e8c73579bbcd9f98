"""Operational tools: the local fake WhatsApp provider and friends."""
