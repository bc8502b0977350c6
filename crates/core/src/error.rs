//! Mapping lower-layer errors to logical errors. Storage and crypto details are logged, not
//! returned: the client gets a generic message that leaks nothing.

use coffer_barrier::BarrierError;
use coffer_sdk::LogicalError;

/// The barrier's errors as the client sees them (`coffer_barrier::logical_error`).
pub fn barrier_err(e: BarrierError) -> LogicalError {
    coffer_barrier::logical_error(e)
}
