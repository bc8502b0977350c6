//! Mapping lower-layer errors to logical errors. Storage and crypto details are logged, not
//! returned: the client gets a generic message that leaks nothing.

use coffer_barrier::BarrierError;
use coffer_sdk::LogicalError;

/// The barrier's errors as the client sees them (`coffer_barrier::logical_error`).
pub fn barrier_err(e: BarrierError) -> LogicalError {
    coffer_barrier::logical_error(e)
}

/// A ceremony step refused (`coffer_ceremony`): the operator's doing is a 400 with the
/// ceremony's message, a failed encryption a 500.
pub fn ceremony_err(e: coffer_ceremony::CeremonyError) -> LogicalError {
    if e.is_client_error() {
        LogicalError::bad_request(e.to_string()).with_source(e)
    } else {
        LogicalError::internal(e.to_string()).with_source(e)
    }
}
