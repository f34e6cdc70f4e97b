-- The board (posts, their fish types, applications), the part of chat the post sagas need (rooms,
-- members, messages) and the transactional outbox.

-- Post ids are reserved by the API (nextval) before it starts the create saga, so that the saga's
-- workflow carries the id from its first event and the API can answer with it; the row itself is
-- written by the saga's first activity.
CREATE SEQUENCE board.post_ids AS bigint;

CREATE TABLE board.posts (
    id                   bigint      PRIMARY KEY DEFAULT nextval('board.post_ids'),
    user_id              bigint      NOT NULL,
    title                text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 20),
    content              text        NOT NULL CHECK (char_length(content) BETWEEN 1 AND 2000),
    fishing_spot_type_id smallint    NOT NULL CHECK (fishing_spot_type_id BETWEEN 1 AND 4),
    prefecture_id        smallint    NOT NULL CHECK (prefecture_id BETWEEN 1 AND 47),
    meeting_place_id     text        NOT NULL CHECK (char_length(meeting_place_id) BETWEEN 27 AND 255),
    meeting_at           timestamptz NOT NULL,
    max_apply            integer     NOT NULL CHECK (max_apply >= 1),
    -- Kept in step with board.applications in the same transaction, so that capacity is one
    -- conditional UPDATE (never a count, then an insert) and canApply is a column comparison.
    apply_count          integer     NOT NULL DEFAULT 0,
    -- PENDING while the create saga runs (never listed), OPEN, CLOSED after the meeting time,
    -- DELETING while the teardown saga runs (never listed).
    status               text        NOT NULL DEFAULT 'PENDING'
                                     CHECK (status IN ('PENDING', 'OPEN', 'CLOSED', 'DELETING')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT posts_capacity CHECK (apply_count >= 0 AND apply_count <= max_apply)
);
ALTER SEQUENCE board.post_ids OWNED BY board.posts.id;

-- Listing: OPEN posts by either sort, in both directions, the id as tie-break; each filter that
-- narrows a lot gets an index that also serves the sort.
CREATE INDEX posts_open_created_idx ON board.posts (created_at, id) WHERE status = 'OPEN';
CREATE INDEX posts_open_meeting_idx ON board.posts (meeting_at, id) WHERE status = 'OPEN';
CREATE INDEX posts_open_prefecture_idx ON board.posts (prefecture_id, created_at, id) WHERE status = 'OPEN';
CREATE INDEX posts_open_spot_idx ON board.posts (fishing_spot_type_id, created_at, id) WHERE status = 'OPEN';
CREATE INDEX posts_open_room_idx ON board.posts (created_at, id) WHERE status = 'OPEN' AND apply_count < max_apply;
-- A user's own posts, whatever their status.
CREATE INDEX posts_user_idx ON board.posts (user_id, created_at, id);

CREATE TABLE board.post_fish_types (
    post_id      bigint   NOT NULL REFERENCES board.posts (id) ON DELETE CASCADE,
    fish_type_id smallint NOT NULL CHECK (fish_type_id BETWEEN 1 AND 95),
    PRIMARY KEY (post_id, fish_type_id)
);
-- "Has all of these fish types": looked up by fish type first.
CREATE INDEX post_fish_types_fish_idx ON board.post_fish_types (fish_type_id, post_id);

CREATE TABLE board.applications (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id    bigint      NOT NULL REFERENCES board.posts (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (post_id, user_id)
);
CREATE INDEX applications_user_idx ON board.applications (user_id);

-- Chat. A room belongs to one post; no foreign key across contexts: the sagas keep the two in
-- step (and a room outliving its post is what the teardown saga removes).
CREATE TABLE chat.rooms (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id    bigint      NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat.members (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id    bigint      NOT NULL REFERENCES chat.rooms (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (room_id, user_id)
);
CREATE INDEX members_user_idx ON chat.members (user_id);

CREATE TABLE chat.messages (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id    bigint      NOT NULL REFERENCES chat.rooms (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL,
    body       text        CHECK (body IS NULL OR char_length(body) BETWEEN 1 AND 1000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_room_idx ON chat.messages (room_id, id);

-- The transactional outbox: each event is written in the same transaction as the change that
-- caused it; the relay publishes them in id order (the id is the JetStream message id).
CREATE TABLE outbox.events (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject        text        NOT NULL,      -- fishapp.<context>.<aggregate>.<event>
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    payload        jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
CREATE INDEX events_unpublished_idx ON outbox.events (id) WHERE published_at IS NULL;
