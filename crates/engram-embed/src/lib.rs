//! Embedders: implementations of `engram_core::embed::Embedder`.
//!
//! This crate is kept apart from `engram-core` because the local model
//! (ONNX Runtime bindings + tokenizers) dominates its build and link time. [`local`] runs
//! all-MiniLM-L6-v2 in-process, [`openai`] calls an OpenAI-compatible
//! embeddings API, [`chat`] distils conversations with an OpenAI-compatible
//! chat model (both through [`api`]), [`fetch`] obtains the local model's weights and ONNX Runtime (DESIGN.md §6).

pub mod api;
pub mod chat;
pub mod fetch;
pub mod local;
pub mod openai;

pub use chat::ChatDistiller;
pub use local::LocalEmbedder;
pub use openai::OpenAiEmbedder;

pub use engram_core::embed::{EmbedError, Embedder};
