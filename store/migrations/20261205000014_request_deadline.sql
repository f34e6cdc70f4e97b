-- The organiser's deadline for requests, kept where applying can see it. When the trip workflow
-- expires a trip's unanswered requests it records for which meeting time it did; while that is
-- still the trip's meeting time, new requests are refused (REQUESTS_CLOSED) instead of waiting
-- for an answer nobody would give. A meeting moved later opens requests again (its own deadline
-- comes later).
ALTER TABLE board.posts ADD COLUMN requests_closed_for timestamptz;
