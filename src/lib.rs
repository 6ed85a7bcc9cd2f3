//! safehire: tells employers whose staff work with children whether an applicant or employee
//! has a record that bars them, from a keyed-hash index of records, and keeps a tamper-evident
//! audit log of every call for prosecutors.

pub mod admission;
pub mod api;
pub mod audit;
pub mod bench;
pub mod certs;
pub mod check;
pub mod checkpoints;
pub mod cli;
pub mod clock;
mod coded;
pub mod config;
pub mod devset;
pub mod i18n;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod org;
pub mod oversight;
pub mod portal;
pub mod regions;
pub mod registry;
pub mod roster;
pub mod server;
pub mod store;
pub mod synth;
pub mod tabular;
pub mod telemetry;
pub mod text;
pub mod throttle;
pub mod tls;

/// The generated API contract (package `safehire.v1`).
pub mod proto {
    tonic::include_proto!("safehire.v1");

    /// The encoded descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/safehire_descriptor.bin"));
}
