"""The object API: the model of each object type, the generic CRUD handlers, special endpoints,
``/function/push`` style inserts, and org provisioning (orgs, users, keys) for the admin API."""
