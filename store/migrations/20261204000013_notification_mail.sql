-- Notifications by e-mail, the second channel (off unless a user opts in and confirms), and
-- live-chat presence, so a room's new messages are counted only for members not reading it live.

-- A user's e-mail channel: requested (a token mailed to the address), then confirmed by whoever
-- reads that mailbox. Digests go only to a confirmed address that is still the account's.
CREATE TABLE notify.mail_settings (
    user_id        bigint      PRIMARY KEY REFERENCES account.users (id) ON DELETE CASCADE,
    address        text        NOT NULL,
    -- Only a hash of the mailed token; cleared once confirmed.
    token_hash     bytea       UNIQUE,
    expires_at     timestamptz,
    confirmed_at   timestamptz,
    -- The last digest sent (at most one per NOTIFY_MAIL_INTERVAL_SECS).
    last_mailed_at timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- When a notification went out by mail; a collapsed NEW_MESSAGES that grows again is unmailed.
ALTER TABLE notify.notifications ADD COLUMN mailed_at timestamptz;
CREATE INDEX notifications_unmailed_idx ON notify.notifications (user_id, updated_at)
    WHERE read_at IS NULL AND mailed_at IS NULL;

-- Who is reading a room live, per API process (`instance`): written when a process's first
-- `messageAdded` subscription of a user to a room starts, deleted when its last ends, and
-- refreshed (`seen_at`) while it lasts. A process that died stops refreshing; its rows count as
-- gone once `seen_at` is older than the live-chat presence TTL.
CREATE TABLE chat.watching (
    user_id  bigint      NOT NULL,
    room_id  bigint      NOT NULL,
    instance uuid        NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, room_id, instance)
);
CREATE INDEX watching_instance_idx ON chat.watching (instance);
