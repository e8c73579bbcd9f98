// Publish one event to wanotify over AMQP with amqplib (npm install amqplib), with publisher confirms.
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672/';
const exchange = `${process.env.WANOTIFY_NAMESPACE ?? 'wanotify'}.events`;

const connection = await amqp.connect(url);
const channel = await connection.createConfirmChannel();
let unroutable = null;
channel.on('return', (message) => { unroutable = message.fields.routingKey; });

const event = {
  event_id: randomUUID(),
  event_type: 'member.registered',
  occurred_at: new Date().toISOString(),
  source: 'node-app',
  data: { member_id: 'M-1001', name: 'Budi', phone: '08114040707' },
};
channel.publish(exchange, event.event_type, Buffer.from(JSON.stringify(event)), {
  persistent: true,
  contentType: 'application/json',
  messageId: event.event_id,
  mandatory: true, // an event no queue takes comes back instead of vanishing
});
await channel.waitForConfirms(); // rejects if the broker refused the event
await channel.close();
await connection.close();
if (unroutable) {
  throw new Error(`no queue takes ${unroutable} on ${exchange}: is wanotify's notifier set up?`);
}
console.log(event.event_id);
