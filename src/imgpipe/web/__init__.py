"""The gallery: its static page, and the loopback server that serves it with a stage's API
behind it (`imgpipe local run`, `imgpipe gallery`), calls signed with SigV4."""
