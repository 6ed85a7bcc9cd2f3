//! The integration suite, one test binary: each module starts the real server (in process or as
//! the `safehire` binary) and talks to it the way its users do. One binary instead of one per
//! file links the library once rather than thirty times, which keeps the build small and quick.

mod common;
mod yaml_subset;

mod access;
mod access_matrix;
mod audit_log;
mod backup;
mod batch;
mod c2sp_verifier;
mod certs_lifecycle;
mod checks;
mod cli;
mod cli_locale;
mod cli_ops;
mod cli_oversight;
mod cli_pipe;
mod cli_roster;
mod config_otel;
mod crash;
mod deploy;
mod fuzz_corpus;
mod hostile;
mod hostile_network;
mod import_order;
mod lawful_use;
mod limits;
mod name_tags;
mod newcomer;
mod otel;
mod oversight;
mod portal;
mod postgres_audit;
mod postgres_foundation;
mod postgres_writer;
mod privacy;
mod probes;
mod readme;
mod roster;
mod verifiable_log;
