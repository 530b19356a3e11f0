//! Vigie, the program: the server (ingest, pipeline, store, API, live stream) and the
//! commands around it. The domain it runs lives in `vigie-core`.

pub mod api;
pub mod auth;
pub mod bench;
pub mod clock;
pub mod config;
pub mod estate;
pub mod hunt;
pub mod ingest;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod probe;
pub mod response;
pub mod rule;
pub mod server;
pub mod store;
pub mod supervision;
