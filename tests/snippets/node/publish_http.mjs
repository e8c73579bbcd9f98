// Publish one event through wanotify's HTTP API with fetch (Node 18+): 202 once the broker has it.
const base = process.env.WANOTIFY_URL ?? 'http://localhost:8080';

const response = await fetch(`${base}/api/v1/events`, {
  method: 'POST',
  headers: {
    Authorization: `Bearer ${process.env.WANOTIFY_API_KEY}`,
    'Content-Type': 'application/json',
  },
  body: JSON.stringify({
    // event_id is optional: wanotify makes one. Send your own to retry safely.
    event_type: 'member.registered',
    occurred_at: new Date().toISOString(),
    source: 'node-app',
    data: { member_id: 'M-1001', name: 'Budi', phone: '08114040707' },
  }),
});
if (response.status !== 202) {
  throw new Error(`wanotify refused the event: ${response.status} ${await response.text()}`);
}
const { event_id: eventId } = await response.json();
console.log(eventId);
