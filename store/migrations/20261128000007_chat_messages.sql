-- Chat messages: createMessage's idempotency key (a retried request returns the message it
-- wrote instead of writing it twice), unique per author.
ALTER TABLE chat.messages ADD COLUMN client_mutation_id text
    CHECK (client_mutation_id IS NULL OR char_length(client_mutation_id) BETWEEN 1 AND 100);
CREATE UNIQUE INDEX messages_client_key_idx ON chat.messages (user_id, client_mutation_id)
    WHERE client_mutation_id IS NOT NULL;
