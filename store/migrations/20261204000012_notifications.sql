-- Notifications: what each user must know, written by the notifications consumer from the event
-- stream (fishapp notifier). The consumer is at-least-once; `handled` makes its effect exactly
-- once: an event's notifications are written in the transaction that records its id.
CREATE SCHEMA IF NOT EXISTS notify;

CREATE TABLE notify.handled (
    event_id uuid PRIMARY KEY,
    handled_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handled_at_idx ON notify.handled (handled_at);

CREATE TABLE notify.notifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES account.users (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN (
        'APPLIED', 'WITHDREW', 'REQUEST_ACCEPTED', 'REQUEST_DECLINED', 'REQUEST_EXPIRED',
        'PROMOTED', 'TRIP_REMINDER', 'TRIP_CHANGED', 'TRIP_CANCELLED', 'TRIP_COMPLETED',
        'NEW_MESSAGES')),
    -- The event that made it (the latest one, for collapsed NEW_MESSAGES).
    event_id uuid NOT NULL,
    -- The trip and room it is about; no foreign keys: a cancelled trip is gone, its notice stays.
    post_id bigint,
    room_id bigint,
    -- Who did it (an applicant, the organiser, the last writer); none for the trip's own timers.
    actor_id bigint,
    -- The trip's title when it was written (a cancelled trip's is nowhere else).
    title text NOT NULL DEFAULT '',
    -- How many events it stands for (NEW_MESSAGES collapse a room's messages until read).
    count integer NOT NULL DEFAULT 1 CHECK (count >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    read_at timestamptz
);
-- A user's page, newest first (keyset on id), and their unread count.
CREATE INDEX notifications_user_idx ON notify.notifications (user_id, id DESC);
CREATE INDEX notifications_unread_idx ON notify.notifications (user_id) WHERE read_at IS NULL;
-- One unread NEW_MESSAGES per user and room: the next message updates it.
CREATE UNIQUE INDEX notifications_collapsed_idx ON notify.notifications (user_id, room_id)
    WHERE kind = 'NEW_MESSAGES' AND read_at IS NULL;
-- Pruning read ones by age.
CREATE INDEX notifications_read_idx ON notify.notifications (read_at) WHERE read_at IS NOT NULL;

-- The trip as the consumer last saw it: whether an update moved its time or place.
CREATE TABLE notify.trips (
    post_id bigint PRIMARY KEY,
    meeting_at timestamptz NOT NULL,
    meeting_place_id text NOT NULL
);

-- The trip's members as the events told them (a teardown deletes the applications without
-- events; the cancellation still reaches everyone who held a seat).
CREATE TABLE notify.members (
    post_id bigint NOT NULL,
    user_id bigint NOT NULL,
    PRIMARY KEY (post_id, user_id)
);

-- Kinds a user turned off.
CREATE TABLE notify.muted (
    user_id bigint NOT NULL REFERENCES account.users (id) ON DELETE CASCADE,
    kind text NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- Events the consumer could not handle after its attempts; they no longer block the stream.
CREATE TABLE notify.dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid,
    subject text NOT NULL,
    stream_sequence bigint NOT NULL UNIQUE,
    attempts integer NOT NULL,
    error text NOT NULL,
    payload text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
