-- The original API's image ids are integers (`Image.id`, `UpdatePostInput.imageIdsToDelete: [Int!]`).
-- Images keep their UUID as the internal key (object names, saga histories); the number is what the
-- API shows and takes back.
ALTER TABLE media.images ADD COLUMN number bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE media.images ADD CONSTRAINT images_number_key UNIQUE (number);
