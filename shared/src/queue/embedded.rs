//! placeholder, being written
/// In-process queue.
pub struct EmbeddedQueue;
