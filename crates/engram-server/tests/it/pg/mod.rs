//! PostgreSQL only: several servers on one database, the database going
//! away and coming back, and moving data between SQLite and PostgreSQL. They
//! run in the PostgreSQL pass of `make test` (they need the test server).

mod faults;
mod migrate;
mod multinode;
