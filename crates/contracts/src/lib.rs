//! The wire contracts of Expansion's three services.
//!
//! This crate owns the protobuf build (see `build.rs`), the generated
//! clients and servers, the conversions between wire values and the domain
//! types of `expansion-domain`, and the single mapping from service errors to
//! gRPC statuses with rich details. It also holds what every side of a call
//! agrees on about access: the roles and the method × role matrix
//! (`access`), the caller (`principal`) and how clients present their API
//! key (`client`). Service crates use domain types inside and
//! convert only at the edge, through the helpers here.

pub mod access;
pub mod catalog;
pub mod client;
pub mod codec;
pub mod error;
pub mod idempotent;
pub mod page;
pub mod principal;
pub mod wire;

/// Generated protobuf and gRPC code, one module per proto package.
#[allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]
pub mod pb {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("expansion.common.v1");
        }
    }
    pub mod health {
        pub mod v1 {
            tonic::include_proto!("expansion.health.v1");
        }
    }
    pub mod pipeline {
        pub mod v1 {
            tonic::include_proto!("expansion.pipeline.v1");
        }
    }
    pub mod credit {
        pub mod v1 {
            tonic::include_proto!("expansion.credit.v1");
        }
    }
}

/// Encoded `FileDescriptorSet` of every Expansion proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/expansion_descriptor.bin"));

pub use error::{ApiError, FieldViolation, PreconditionViolation};
pub use idempotent::Idempotent;
pub use principal::{Principal, caller_of, principal_of};

/// FNV-1a, 64 bits: a hash that stays the same across builds and Rust
/// releases (the std hasher may not), for what is stored or compared
/// between processes (request fingerprints, page tokens, lock keys).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
