-- Rules that were timing or trust before (hostile round 3).

-- The sagas:
-- one change of a post at a time. The UpdatePost saga that holds a post writes its workflow id
-- here in its first step and clears it in its last (or after its compensations); another one
-- meanwhile is refused, so a failed change's compensation can never overwrite a later one's. A
-- hold older than an hour is stale (a saga an operator terminated) and may be taken over.
ALTER TABLE board.posts
    ADD COLUMN update_saga       text,
    ADD COLUMN update_started_at timestamptz;

-- An email change waits for its confirmation here (one per user: a new request replaces the
-- last). The address is claimed only when someone who reads its mailbox confirms; only a hash
-- of the token is kept.
CREATE TABLE account.email_changes (
    user_id    bigint      PRIMARY KEY REFERENCES account.users (id) ON DELETE CASCADE,
    new_email  text        NOT NULL,
    token_hash bytea       NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
