"""sipsimple's tests (a package so that helpers import as ``tests.peers...`` from anywhere)."""
