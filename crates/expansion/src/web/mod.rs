//! Expansion without gRPC: the Connect protocol's unary form (HTTP/JSON,
//! `POST /<package>.<Service>/<Method>`), gRPC-Web (tonic-web, in `serve`),
//! the OpenAPI document of the same HTTP methods, and CORS for browsers on
//! other origins; and the web console (`/console/`), static pages that call
//! that HTTP/JSON API from the browser.
//!
//! Everything is read from the descriptor set at start-up, so a method added
//! to a `.proto` gets its route, its OpenAPI path and its JSON mapping
//! without code here. A JSON call is transcoded into a gRPC call and sent
//! through the very stack that serves gRPC (metrics, API keys and roles,
//! limits, the services' own codec), then its answer is transcoded back.

pub mod connect;
pub mod console;
pub mod cors;
pub mod openapi;
pub mod routes;

pub use connect::ConnectLayer;
pub use routes::Routes;
