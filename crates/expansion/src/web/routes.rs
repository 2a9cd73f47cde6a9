//! The route table: every method of the services this process serves,
//! keyed by its gRPC path, as the descriptor set describes them.

use std::collections::BTreeMap;

use anyhow::Context;
use prost_reflect::{DescriptorPool, MethodDescriptor};

/// The methods reachable over HTTP, read from the descriptor set.
#[derive(Debug, Clone)]
pub struct Routes {
    pool: DescriptorPool,
    methods: BTreeMap<String, MethodDescriptor>,
}

/// `/package.Service/Method`, the path gRPC, gRPC-Web and Connect share.
pub fn path_of(method: &MethodDescriptor) -> String {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
}

/// Whether a method is one request and one response (the only kind HTTP/JSON
/// serves).
pub fn is_unary(method: &MethodDescriptor) -> bool {
    !method.is_client_streaming() && !method.is_server_streaming()
}

impl Routes {
    /// The descriptors of Expansion's contracts (with the `google.rpc` error
    /// details) and of `grpc.health.v1`, routed for the `served` services.
    pub fn new(served: &[&str]) -> anyhow::Result<Self> {
        let mut pool = DescriptorPool::decode(contracts::FILE_DESCRIPTOR_SET)
            .context("reading the contracts' descriptor set")?;
        pool.decode_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .context("reading the grpc.health.v1 descriptor set")?;
        let methods = pool
            .services()
            .filter(|service| served.contains(&service.full_name()))
            .flat_map(|service| service.methods().collect::<Vec<_>>())
            .map(|method| (path_of(&method), method))
            .collect();
        Ok(Self { pool, methods })
    }

    /// Every message, enum and error detail the routes may name.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// The method at a gRPC path, streaming or not.
    pub fn method(&self, path: &str) -> Option<&MethodDescriptor> {
        self.methods.get(path)
    }

    /// The unary methods, by path: what HTTP/JSON answers.
    pub fn unary(&self) -> impl Iterator<Item = (&str, &MethodDescriptor)> {
        self.methods
            .iter()
            .filter(|(_, method)| is_unary(method))
            .map(|(path, method)| (path.as_str(), method))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_unary_method_of_a_served_service_has_a_route_and_no_other() {
        let served = ["expansion.health.v1.AccountHealthService"];
        let routes = Routes::new(&served).unwrap();
        let pool = routes.pool();
        let service = pool
            .get_service_by_name("expansion.health.v1.AccountHealthService")
            .unwrap();
        let expected: Vec<String> = service
            .methods()
            .filter(is_unary)
            .map(|m| path_of(&m))
            .collect();
        let routed: Vec<&str> = routes.unary().map(|(path, _)| path).collect();
        assert!(!expected.is_empty());
        assert_eq!(routed.len(), expected.len());
        for path in &expected {
            assert!(routed.contains(&path.as_str()), "{path} has no route");
        }
        assert!(
            routes
                .method("/expansion.health.v1.AccountHealthService/WatchEvents")
                .is_some_and(|m| !is_unary(m))
        );
        assert!(
            routes
                .method("/expansion.credit.v1.CompensationCreditService/GetStatement")
                .is_none()
        );
    }
}
