-- Image metadata; the bytes are in object storage under the keys recorded here.
CREATE TABLE media.images (
    id             uuid        PRIMARY KEY,
    -- Empty while staged (uploaded, processed, not yet attached to anything).
    owner_type     text        CHECK (owner_type IN ('POST', 'USER', 'MESSAGE')),
    owner_id       bigint,
    display_key    text        NOT NULL,
    thumbnail_key  text        NOT NULL,
    content_type   text        NOT NULL,
    width          integer     NOT NULL CHECK (width > 0),
    height         integer     NOT NULL CHECK (height > 0),
    bytes          bigint      NOT NULL CHECK (bytes > 0),   -- of the display rendition
    original_name  text        NOT NULL,
    uploader_id    bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((owner_type IS NULL) = (owner_id IS NULL))
);
CREATE INDEX images_owner_idx ON media.images (owner_type, owner_id);
-- The orphan cleanup looks for old staged images only.
CREATE INDEX images_staged_idx ON media.images (created_at) WHERE owner_id IS NULL;
