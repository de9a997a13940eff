"""The standalone fake's own API: the ``/_fake/`` control endpoints and the data file
``--data`` loads. They drive the fake through its public API, as a test would."""
