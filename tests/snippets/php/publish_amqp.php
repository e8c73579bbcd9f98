<?php
// Publish one event to wanotify over AMQP with php-amqplib, with publisher confirms.
// Debian/Ubuntu: apt install php-cli php-amqplib; with Composer: require 'vendor/autoload.php' instead.
require_once 'PhpAmqpLib/autoload.php';

use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Message\AMQPMessage;

$url = parse_url(getenv('AMQP_URL') ?: 'amqp://guest:guest@localhost:5672/');
$exchange = (getenv('WANOTIFY_NAMESPACE') ?: 'wanotify') . '.events';
$vhost = isset($url['path']) && strlen($url['path']) > 1 ? urldecode(substr($url['path'], 1)) : '/';

$connection = new AMQPStreamConnection($url['host'], $url['port'] ?? 5672, urldecode($url['user'] ?? 'guest'),
    urldecode($url['pass'] ?? 'guest'), $vhost);
$channel = $connection->channel();
$channel->confirm_select();  // the broker acknowledges every publish, or refuses it
$channel->set_nack_handler(function (AMQPMessage $message): void {
    throw new RuntimeException('the broker refused the event; publish it again');
});
$channel->set_return_listener(function (int $code, string $text, string $exchange, string $routingKey): void {
    throw new RuntimeException("no queue takes $routingKey on $exchange: is wanotify's notifier set up?");
});

// A random (version 4) UUID; in Laravel: (string) Str::uuid().
$bytes = random_bytes(16);
$bytes[6] = chr(ord($bytes[6]) & 0x0f | 0x40);
$bytes[8] = chr(ord($bytes[8]) & 0x3f | 0x80);
$eventId = vsprintf('%s%s-%s-%s-%s-%s%s%s', str_split(bin2hex($bytes), 4));

$event = [
    'event_id' => $eventId,
    'event_type' => 'payment.succeeded',
    'occurred_at' => (new DateTimeImmutable('now', new DateTimeZone('UTC')))->format(DATE_RFC3339),
    'source' => 'laravel-app',
    'data' => ['member_id' => 'M-1001', 'name' => 'Budi', 'phone' => '08114040707', 'amount' => 150000],
];
$message = new AMQPMessage(json_encode($event, JSON_THROW_ON_ERROR), [
    'content_type' => 'application/json',
    'delivery_mode' => AMQPMessage::DELIVERY_MODE_PERSISTENT,
    'message_id' => $eventId,
]);
$channel->basic_publish($message, $exchange, $event['event_type'], true);  // mandatory: unroutable comes back
$channel->wait_for_pending_acks_returns(10);
echo $eventId, PHP_EOL;

$channel->close();
$connection->close();
