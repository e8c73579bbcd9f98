<?php
// In a Laravel app: publish one event through wanotify's HTTP API with the HTTP client.
// config/services.php: 'wanotify' => ['url' => env('WANOTIFY_URL'), 'key' => env('WANOTIFY_API_KEY')]
use Illuminate\Support\Facades\Http;
use Illuminate\Support\Str;

$eventId = Http::withToken(config('services.wanotify.key'))
    ->acceptJson()
    ->timeout(10)
    ->retry(3, 500)  // safe: the same event_id is never sent twice
    ->post(config('services.wanotify.url').'/api/v1/events', [
        'event_id' => (string) Str::uuid(),
        'event_type' => 'payment.succeeded',
        'occurred_at' => now()->toRfc3339String(),
        'source' => 'laravel-app',
        'data' => ['member_id' => 'M-1001', 'name' => 'Budi', 'phone' => '08114040707', 'amount' => 150000],
    ])
    ->throw()  // a 4xx/5xx becomes an exception; 422 names the field that is wrong
    ->json('event_id');
