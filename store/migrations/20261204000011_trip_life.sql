-- A trip's life (round 3): the organiser's approval, the waitlist, and COMPLETED after the day.

-- A trip may ask its organiser to approve each application (off: applying takes a seat at once,
-- as the original app did). COMPLETED: some hours after the meeting, the trip workflow ends the
-- trip's life (members are invited to say how it went).
ALTER TABLE board.posts
    ADD COLUMN approval_required boolean NOT NULL DEFAULT false,
    DROP CONSTRAINT posts_status_check,
    ADD CONSTRAINT posts_status_check
        CHECK (status IN ('PENDING', 'OPEN', 'CLOSED', 'COMPLETED', 'DELETING'));

-- An application holds a seat (APPLIED), waits in the trip's line (WAITLISTED, first come first
-- served by id), or waits for the organiser (PENDING_APPROVAL; no seat is held meanwhile).
-- apply_count counts APPLIED rows only, kept in step in the same transaction as before.
ALTER TABLE board.applications
    ADD COLUMN status text NOT NULL DEFAULT 'APPLIED'
        CHECK (status IN ('APPLIED', 'WAITLISTED', 'PENDING_APPROVAL'));

-- The line of a trip, in order; and the requests waiting for its organiser.
CREATE INDEX applications_waitlist_idx ON board.applications (post_id, id)
    WHERE status = 'WAITLISTED';
CREATE INDEX applications_requests_idx ON board.applications (post_id, id)
    WHERE status = 'PENDING_APPROVAL';
