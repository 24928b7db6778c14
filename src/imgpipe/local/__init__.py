"""The local stack: an embedded AWS endpoint, deploy wiring and a Lambda-like SQS runner."""
