//! PostgreSQL only: the database going away and coming back. They run in
//! the PostgreSQL pass of `make test` (they need the test server); several
//! nodes on one database are `nodes.rs`, moving data between stores
//! `migrate.rs`.

mod faults;
