"""Follow what becomes of your messages: wanotify's status events, with pika (pip install pika)."""

import json
import os

import pika

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
exchange = os.environ.get("WANOTIFY_NAMESPACE", "wanotify") + ".status"
queue = os.environ.get("STATUS_QUEUE", "core-app.wanotify-status")  # your app's own queue

connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
# Durable, so no status is missed while your app is down; "message.*" takes every status
# (or bind only "message.dead" and "message.failed", say).
channel.queue_declare(queue, durable=True)
channel.queue_bind(queue, exchange, routing_key="message.*")


def on_status(channel, method, properties, body):
    status = json.loads(body)
    # At least once: the same change may come twice. Key your update on (message_id, status).
    print(status["event_id"], status["message_id"], status["template"], status["status"], status.get("error", ""),
          flush=True)
    channel.basic_ack(method.delivery_tag)


channel.basic_consume(queue, on_status)
channel.start_consuming()
