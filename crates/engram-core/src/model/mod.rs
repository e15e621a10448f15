//! The domain model: namespaces, memories, LangGraph items.

pub mod item;
pub mod memory;
pub mod namespace;
pub mod session;

pub use memory::{Memory, MemoryPatch, NewMemory, Source, Tier, WriteStatus, Writer};
pub use namespace::Namespace;
