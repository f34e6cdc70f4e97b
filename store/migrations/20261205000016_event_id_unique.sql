-- An event's identity is unique in the outbox, and can be looked up: the notifier asks whether an
-- event it is given is still in this database (one that a restore took away is not handled).
CREATE UNIQUE INDEX events_event_id_key ON outbox.events (event_id);
