<?php
// The Laravel snippet above in plain PHP (no framework, no extension beyond php-cli):
// publish one event through wanotify's HTTP API; 202 {"event_id"} once the broker has it.
$base = getenv('WANOTIFY_URL') ?: 'http://localhost:8080';
$event = [
    'event_type' => 'payment.succeeded',  // event_id is optional: wanotify makes one
    'occurred_at' => (new DateTimeImmutable('now', new DateTimeZone('UTC')))->format(DATE_RFC3339),
    'source' => 'laravel-app',
    'data' => ['member_id' => 'M-1001', 'name' => 'Budi', 'phone' => '08114040707', 'amount' => 150000],
];
$context = stream_context_create(['http' => [
    'method' => 'POST',
    'header' => implode("\r\n", [
        'Authorization: Bearer ' . getenv('WANOTIFY_API_KEY'),
        'Content-Type: application/json',
        'Accept: application/json',
    ]),
    'content' => json_encode($event, JSON_THROW_ON_ERROR),
    'timeout' => 10,
    'ignore_errors' => true,  // read the body of a 4xx/5xx too: it says what is wrong
]]);
$body = file_get_contents("$base/api/v1/events", false, $context);
$status = (int) explode(' ', $http_response_header[0] ?? 'HTTP/1.1 0')[1];
if ($status !== 202) {
    fwrite(STDERR, "wanotify refused the event: $status $body\n");
    exit(1);
}
echo json_decode($body, true, flags: JSON_THROW_ON_ERROR)['event_id'], PHP_EOL;
