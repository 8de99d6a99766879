"""``--collect otel``: an OTLP receiver (HTTP/protobuf, JSON; gRPC as a library) that the
engine exports its per-request spans to, journalled into the run's ``otel/`` tables."""
