"""Serve: the production model over HTTP, micro-batching, and the prediction log."""
