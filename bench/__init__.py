"""wanotify's benchmark suite: ``python -m bench`` (see bench/README.md).

Everything runs against local services only (RabbitMQ and PostgreSQL on 127.0.0.1), in a
dedicated database (``wanotify_bench``) and in namespaces of its own, and every loop is
bounded in count and in time.
"""
