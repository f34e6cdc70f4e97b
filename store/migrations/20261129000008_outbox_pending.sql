-- What the relay has yet to publish moves out of outbox.events into a table of its own. Marking an
-- event published was an UPDATE of its row: a new version of the whole row (payload included) and
-- an entry in each of its indexes, per event — most of the relay's time. It is now the DELETE of a
-- small row of outbox.pending; outbox.events is written once and never updated.

CREATE TABLE outbox.pending (
    id             bigint      PRIMARY KEY REFERENCES outbox.events (id) ON DELETE CASCADE,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    -- A row JetStream refused for good: its aggregate waits until an operator clears failed_at
    -- (to retry) or deletes the event.
    failed_at      timestamptz,
    last_error     text
);
-- A compensation withdraws an aggregate's pending events.
CREATE INDEX pending_aggregate_idx ON outbox.pending (aggregate_type, aggregate_id, id);
-- The relay holds back every aggregate with a failed row: one probe per row read, in an index
-- that holds only the (rare) failed rows.
CREATE INDEX pending_failed_idx ON outbox.pending (aggregate_type, aggregate_id)
    WHERE failed_at IS NOT NULL;

INSERT INTO outbox.pending (id, aggregate_type, aggregate_id, failed_at, last_error)
    SELECT id, aggregate_type, aggregate_id, failed_at, last_error
      FROM outbox.events WHERE published_at IS NULL;

DROP INDEX outbox.events_unpublished_idx;
DROP INDEX outbox.events_failed_idx;
DROP INDEX outbox.events_published_idx;
ALTER TABLE outbox.events DROP COLUMN published_at, DROP COLUMN failed_at, DROP COLUMN last_error;
-- The payload is kept as the JSON text it was written as: the relay only ever forwards it, and
-- reading jsonb back as text cost it more than a third of its reading time. (Writers still bind
-- jsonb; the assignment cast makes the text.)
ALTER TABLE outbox.events ALTER COLUMN payload TYPE json USING payload::json;
-- Pruning: events past the retention, once published.
CREATE INDEX events_created_idx ON outbox.events (created_at);

-- Every inserted event is pending by construction (no writer can forget it), and the relay is
-- woken at commit: one statement-level trigger does both.
DROP TRIGGER events_notify ON outbox.events;
DROP FUNCTION outbox.notify_relay();
CREATE FUNCTION outbox.on_events_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox.pending (id, aggregate_type, aggregate_id)
        SELECT id, aggregate_type, aggregate_id FROM inserted;
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_inserted AFTER INSERT ON outbox.events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.on_events_inserted();
