//! Progress of long work.
