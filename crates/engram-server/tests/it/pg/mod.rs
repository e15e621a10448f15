//! PostgreSQL only: several servers on one database, and the database going
//! away and coming back. They run in the PostgreSQL pass of `make test` (they
//! need the test server; SQLite is one server per data directory).

mod faults;
mod multinode;
