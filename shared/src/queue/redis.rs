//! placeholder, being written
/// Redis Streams queue.
pub struct RedisQueue;
