-- Rules the sagas rely on that were timing before (hostile-round-3 issue):
-- one change of a post at a time. The UpdatePost saga that holds a post writes its workflow id
-- here in its first step and clears it in its last (or after its compensations); another one
-- meanwhile is refused, so a failed change's compensation can never overwrite a later one's. A
-- hold older than an hour is stale (a saga an operator terminated) and may be taken over.
ALTER TABLE board.posts
    ADD COLUMN update_saga       text,
    ADD COLUMN update_started_at timestamptz;
