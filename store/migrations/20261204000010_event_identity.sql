-- Every event gets an identity that is unique everywhere, written with the row: a UUIDv7 the
-- writer generates (time-ordered, so it also sorts roughly by creation). The row id is a
-- sequence of this database's, which a restore from a backup or a failover to a replica issues
-- again: as the JetStream message id it made JetStream drop new events as duplicates of old
-- ones. Existing rows get a random (v4) identity here; nothing relies on their order.
ALTER TABLE outbox.events ADD COLUMN event_id uuid;
UPDATE outbox.events SET event_id = gen_random_uuid() WHERE event_id IS NULL;
ALTER TABLE outbox.events ALTER COLUMN event_id SET NOT NULL;

-- Which deployment this database is: made once, kept by backups and restores (a restored
-- database is the same deployment), different for every other database. The relay records it on
-- the JetStream stream it publishes to and refuses a stream another deployment owns; consumers
-- ignore events of other deployments.
CREATE TABLE outbox.deployment (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    only_one   boolean     NOT NULL DEFAULT true UNIQUE CHECK (only_one),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO outbox.deployment DEFAULT VALUES;
