"""The event API: the event store, insert validation, attachments, the ``/v1/.../insert|fetch``
routes and the SDK's logs3 paths."""
