"""Kafka plumbing: partitioners, client-config translation, producers, admin, dev brokers."""
