"""Helpers the tests share: services, processes, waiting."""
