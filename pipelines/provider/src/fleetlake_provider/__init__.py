"""The embedded Voi provider: a deterministic simulated city served over HTTP, which knows its ground truth."""
