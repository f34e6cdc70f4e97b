-- The outbox relay (relaylog): event types instead of full subjects (the subject prefix is the
-- deployment's), payload schema versions, failed (poison) rows, and a notification on insert.

-- Subjects were written as 'fishapp.<type>'; the relay now prefixes the type itself.
ALTER TABLE outbox.events RENAME COLUMN subject TO event_type;
UPDATE outbox.events SET event_type = substring(event_type FROM 9) WHERE event_type LIKE 'fishapp.%';

-- The schema version of the payload (domain::events::EventType::version) when it was written.
ALTER TABLE outbox.events ADD COLUMN version smallint NOT NULL DEFAULT 1;

-- A row JetStream refused for good (too large, say): the relay stops publishing its aggregate
-- (to keep that aggregate's order) and reports it; an operator clears failed_at to retry it.
ALTER TABLE outbox.events ADD COLUMN failed_at timestamptz;
ALTER TABLE outbox.events ADD COLUMN last_error text;

-- Withdrawing an aggregate's unpublished events, and holding back a failed row's aggregate.
CREATE INDEX events_aggregate_idx ON outbox.events (aggregate_type, aggregate_id, id);
CREATE INDEX events_failed_idx ON outbox.events (aggregate_type, aggregate_id)
    WHERE failed_at IS NOT NULL AND published_at IS NULL;
-- Pruning published rows past their retention.
CREATE INDEX events_published_idx ON outbox.events (published_at) WHERE published_at IS NOT NULL;

-- Wake the relay when events commit (NOTIFY is delivered at commit; one per statement is enough:
-- the relay reads everything unpublished when woken).
CREATE FUNCTION outbox.notify_relay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_notify AFTER INSERT ON outbox.events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.notify_relay();
