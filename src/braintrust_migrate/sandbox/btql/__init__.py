"""BTQL: the text parser, the JSON query form and the executor over the event store."""
