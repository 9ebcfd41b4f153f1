"""Failure and completion notifications: webhooks (signed JSON) and an optional SES email sink.

Whoever ends a job publishes its event to the notifier (chalicelib/realtime/events.py); the
`NotificationEnqueuer` among the notifiers puts one message per sink on the notification queue of
its own and returns. The `deliver_notifications` handler (chalicelib/blueprints/notifications.py)
takes each message and delivers it; SQS redelivers a failed delivery with backoff, then moves it to
the queue's dead-letter queue. No upload ever waits for a receiver.

- `rules`: which events are notified (NOTIFY_EVENTS) and what a delivery's answer means (retry or not).
- `signature`: the `X-Studio-Signature` header, and how a receiver verifies it.
- `payload`: the JSON a receiver gets, with its Slack-compatible `text`.
- `messages`: the notification queue's message, and the sinks it names.
- `enqueue`, `delivery`, `webhook`, `email`: putting messages on the queue and delivering them.
"""
