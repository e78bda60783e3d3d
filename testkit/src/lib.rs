//! Test parts that speak the real wire protocols: mock FCM and APNs servers, and a
//! throwaway `redis-server` for tests that need a real Redis.

pub mod redis_server;
