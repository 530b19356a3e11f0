//! The one place the binary reads the wall clock; the core never does.

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
