"""RabbitMQ deployment files generated from ``shared.topology`` (see ``definitions.py``)."""
