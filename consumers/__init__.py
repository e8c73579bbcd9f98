"""Long-running consumers: the notifier (events -> messages) and the sender (messages -> WhatsApp)."""
