-- A user's notifications are listed newest first by their last change, not by when they were
-- first written: a NEW_MESSAGES that grows keeps its id (the client marks it read by id) but
-- moves to the top of the list, and the per-user cap prunes by the same order (a room that is
-- still talking is not the first to go). `recency` comes from one sequence and is taken again
-- each time a notification grows; the list's cursor is this value.
CREATE SEQUENCE notify.notifications_recency_seq;

ALTER TABLE notify.notifications ADD COLUMN recency bigint;
UPDATE notify.notifications n SET recency = o.recency
  FROM (SELECT id, row_number() OVER (ORDER BY updated_at, id) AS recency
          FROM notify.notifications) o
 WHERE o.id = n.id;
SELECT setval('notify.notifications_recency_seq', coalesce(max(recency), 0) + 1, false)
  FROM notify.notifications;
ALTER TABLE notify.notifications
  ALTER COLUMN recency SET DEFAULT nextval('notify.notifications_recency_seq'),
  ALTER COLUMN recency SET NOT NULL;
ALTER SEQUENCE notify.notifications_recency_seq OWNED BY notify.notifications.recency;

CREATE INDEX notifications_user_recency_idx ON notify.notifications (user_id, recency DESC);
DROP INDEX notify.notifications_user_idx;
