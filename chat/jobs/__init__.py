"""Background model work as durable jobs run by the worker (docs/jobs.md)."""
