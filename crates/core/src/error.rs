//! Mapping lower-layer errors to logical errors. Storage and crypto details are logged, not
//! returned: the client gets a generic message that leaks nothing.

use coffer_barrier::BarrierError;
use coffer_sdk::{ErrorKind, LogicalError};

pub fn barrier_err(e: BarrierError) -> LogicalError {
    match e {
        BarrierError::Sealed => LogicalError::sealed(),
        BarrierError::Storage(s) => {
            tracing::error!(error = %s, "storage failure");
            LogicalError::new(ErrorKind::Internal, "internal error: storage backend failure")
        }
        other => {
            tracing::error!(error = %other, "barrier failure");
            LogicalError::internal("internal error")
        }
    }
}
