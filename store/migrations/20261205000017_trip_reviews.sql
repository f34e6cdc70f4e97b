-- Reviews of a trip that is over: each member who held a seat says how it went (a rating of 1–5
-- and a comment), once per trip — a second review replaces the first. They go with their post.
-- The organiser's rating is the average over the trips they organised.
CREATE TABLE board.reviews (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id    bigint      NOT NULL REFERENCES board.posts (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL,
    rating     smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    text        CHECK (char_length(comment) BETWEEN 1 AND 1000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (post_id, user_id)
);
-- A trip's reviews, newest first (keyset by id).
CREATE INDEX reviews_post_idx ON board.reviews (post_id, id DESC);

-- The organiser hears of each review of their trip.
ALTER TABLE notify.notifications
    DROP CONSTRAINT notifications_kind_check,
    ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
        'APPLIED', 'WITHDREW', 'REQUEST_ACCEPTED', 'REQUEST_DECLINED', 'REQUEST_EXPIRED',
        'PROMOTED', 'TRIP_REMINDER', 'TRIP_CHANGED', 'TRIP_CANCELLED', 'TRIP_COMPLETED',
        'TRIP_REVIEWED', 'NEW_MESSAGES'));
