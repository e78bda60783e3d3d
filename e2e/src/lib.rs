//! End-to-end tests live in `tests/`: ingest, a real Redis (or the embedded queue), the
//! dispatcher and the mock providers, talking over real sockets.
