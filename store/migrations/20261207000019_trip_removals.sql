-- An organiser may remove someone from their trip (a member, one in its line, a request): the
-- removal is recorded, and the removed user may not apply to that trip again until the organiser
-- lifts it. It goes with its post.
CREATE TABLE board.removals (
    post_id    bigint      NOT NULL REFERENCES board.posts (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);

-- The removed user hears of it. The new list only adds a kind, so every existing row already
-- satisfies it: NOT VALID skips re-reading the whole (busy) table under its exclusive lock, and
-- new and changed rows are checked as before.
ALTER TABLE notify.notifications
    DROP CONSTRAINT notifications_kind_check,
    ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
        'APPLIED', 'WITHDREW', 'REQUEST_ACCEPTED', 'REQUEST_DECLINED', 'REQUEST_EXPIRED',
        'PROMOTED', 'REMOVED', 'TRIP_REMINDER', 'TRIP_CHANGED', 'TRIP_CANCELLED', 'TRIP_COMPLETED',
        'TRIP_REVIEWED', 'NEW_MESSAGES')) NOT VALID;
