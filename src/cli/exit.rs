//! Exit codes, so that scripts can act on what happened without parsing output.

use tonic::Code;

/// The call succeeded (for a check: NO_RECORD).
pub const OK: u8 = 0;
/// Usage error: bad flags or arguments (also what clap uses).
pub const USAGE: u8 = 2;
/// A check answered RECORD_FOUND.
pub const RECORD_FOUND: u8 = 3;
/// A check answered NEEDS_REVIEW: hold the hire until a registrar resolves it.
pub const NEEDS_REVIEW: u8 = 4;
/// The input was refused: by the server (INVALID_ARGUMENT), a file not of the expected form, or
/// a roster file with a rejected row (nothing applied).
pub const INVALID_INPUT: u8 = 5;
/// The server refused the caller (UNAUTHENTICATED, PERMISSION_DENIED).
pub const REFUSED: u8 = 6;
/// The server could not be reached, or the local files (certificates, CSV) could not be read.
pub const UNAVAILABLE: u8 = 7;
/// A file was applied or answered except the rows with errors (batch, imports, a partial
/// roster upload).
pub const ROW_ERRORS: u8 = 10;
/// A batch could not complete; `--resume` continues it.
pub const BATCH_INCOMPLETE: u8 = 11;
/// Any other failure (NOT_FOUND, INTERNAL, a broken audit chain, …).
pub const FAILED: u8 = 8;

/// The exit code of a command that answered many checks (`batch`, `roster recheck`): the first
/// that applies of a hit (3), a review (4), rows with errors (10), success (0) — what needs
/// acting on first comes first, exactly as for a single `check`.
pub fn for_answers(record_found: u64, needs_review: u64, row_errors: u64) -> u8 {
    if record_found > 0 {
        RECORD_FOUND
    } else if needs_review > 0 {
        NEEDS_REVIEW
    } else if row_errors > 0 {
        ROW_ERRORS
    } else {
        OK
    }
}

pub fn for_status(code: Code) -> u8 {
    match code {
        Code::InvalidArgument | Code::OutOfRange => INVALID_INPUT,
        Code::Unauthenticated | Code::PermissionDenied => REFUSED,
        Code::Unavailable | Code::DeadlineExceeded => UNAVAILABLE,
        _ => FAILED,
    }
}
