-- Accounts: users and their refresh-token families.

CREATE TABLE account.users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,               -- argon2id, PHC string
    name          text        NOT NULL,
    sex           text        NOT NULL CHECK (sex IN ('MALE', 'FEMALE')),
    introduction  text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Uniqueness is the constraint's job, not a check-then-insert: two sign-ups racing for one
-- address cannot both succeed. Case-insensitive, as mail providers treat addresses.
CREATE UNIQUE INDEX users_email_key ON account.users (lower(email));

-- A family is one sign-in (one device, say): every refresh token rotated from the first one
-- belongs to it. Revoking the family ends the sign-in.
CREATE TABLE account.token_families (
    id          uuid        PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES account.users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    revoked_why text CHECK (revoked_why IN ('logout', 'reuse', 'password_change'))
);
CREATE INDEX token_families_user_idx ON account.token_families (user_id) WHERE revoked_at IS NULL;

-- Only a hash of each refresh token is kept: a leaked table yields no usable token.
CREATE TABLE account.refresh_tokens (
    token_hash  bytea       PRIMARY KEY,              -- SHA-256 of the 256-bit token
    family_id   uuid        NOT NULL REFERENCES account.token_families (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz                           -- set once, when rotated
);
CREATE INDEX refresh_tokens_family_idx ON account.refresh_tokens (family_id);
