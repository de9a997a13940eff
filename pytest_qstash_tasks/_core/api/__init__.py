"""QStash's HTTP API, by resource: one neutral ``Request`` in, one response out, no I/O.
The ``Dispatcher`` routes each request to its resource (``tasks``, ``messages``,
``url_groups``), and ``hosts`` says whose host a request is for."""
