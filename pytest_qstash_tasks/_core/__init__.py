"""The fake's core: wire models, factories, store, pagination, endpoint, faults,
calls, clock and reports. It imports no HTTP library and no pytest (a test checks)."""
