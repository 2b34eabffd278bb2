"""Triggers: a function fed by a queue or a stream on a broker (RabbitMQ, Redis, NATS, MQTT) or
by the platform's own queue, with Lambda's event source mappings as the model. config.py and
sources.py check what the user configures (pure)."""
