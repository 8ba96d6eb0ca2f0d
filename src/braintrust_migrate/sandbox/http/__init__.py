"""The HTTP face: the Starlette app and its route table, the host/body guard, the admin API,
``/v1`` version info and the endpoints the sandbox answers with 501."""
