"""RabbitMQ deployment files generated from ``wanotify.shared.topology`` (see ``definitions.py``)."""
