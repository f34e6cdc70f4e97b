-- A trip's reviews outlive the trip: an organiser who deletes a trip that is over does not take its
-- reviews out of their rating. Each review records whose trip it rated; the post may go.
ALTER TABLE board.reviews ADD COLUMN organiser_id bigint;
UPDATE board.reviews r SET organiser_id = p.user_id FROM board.posts p WHERE p.id = r.post_id;
ALTER TABLE board.reviews
    ALTER COLUMN organiser_id SET NOT NULL,
    DROP CONSTRAINT reviews_post_id_fkey;
CREATE INDEX reviews_organiser_idx ON board.reviews (organiser_id);
