//! PostgreSQL only: the database going away and coming back, and moving
//! data between SQLite and PostgreSQL. They run in the PostgreSQL pass of
//! `make test` (they need the test server); several nodes on one database
//! are `nodes.rs`.

mod faults;
mod migrate;
