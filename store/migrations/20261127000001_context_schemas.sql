-- One schema per bounded context (see docs/architecture.md). Tables arrive with the issues that
-- need them; the schemas exist from the start so that every context's migrations have a home and
-- permissions can later be granted per context.
CREATE SCHEMA IF NOT EXISTS account;
CREATE SCHEMA IF NOT EXISTS board;
CREATE SCHEMA IF NOT EXISTS chat;
CREATE SCHEMA IF NOT EXISTS media;
CREATE SCHEMA IF NOT EXISTS outbox;
