"""The local stack: MiniStack (or LocalStack) on loopback, the deploy to it, its HTTP API."""
