//! The seven webhook RPCs as each service's tonic trait answers them: one
//! function per RPC, generic over the service's own request and response
//! messages (each service's protos declare their own, with the same
//! fields), so a service's `api.rs` method is one call.

use contracts::pb::common::v1 as common;
use tonic::{Request, Response, Status};

use crate::Webhooks;

type Reply<T> = Result<Response<T>, Status>;

/// `CreateWebhookEndpointRequest` of a service.
pub trait Create: prost::Message + Sized {
    type Response;
    fn request_id(&self) -> &str;
    fn spec(&self) -> Option<common::WebhookEndpointSpec>;
    fn answer(endpoint: common::WebhookEndpoint) -> Self::Response;
}

/// `ListWebhookEndpointsRequest` of a service.
pub trait List {
    type Response;
    fn page(&self) -> (i32, &str);
    fn answer(endpoints: Vec<common::WebhookEndpoint>, next_page_token: String) -> Self::Response;
}

/// `DisableWebhookEndpointRequest` of a service.
pub trait Disable: prost::Message + Sized {
    type Response;
    fn request_id(&self) -> &str;
    fn endpoint_id(&self) -> &str;
    fn reason(&self) -> &str;
    fn answer(endpoint: common::WebhookEndpoint) -> Self::Response;
}

/// `EnableWebhookEndpointRequest` of a service.
pub trait Enable: prost::Message + Sized {
    type Response;
    fn request_id(&self) -> &str;
    fn endpoint_id(&self) -> &str;
    fn answer(endpoint: common::WebhookEndpoint) -> Self::Response;
}

/// `DeleteWebhookEndpointRequest` of a service.
pub trait Delete: prost::Message + Sized {
    type Response: Default;
    fn request_id(&self) -> &str;
    fn endpoint_id(&self) -> &str;
}

/// `ListWebhookDeliveriesRequest` of a service.
pub trait Deliveries {
    type Response;
    fn endpoint_id(&self) -> &str;
    fn page(&self) -> (i32, &str);
    fn answer(deliveries: Vec<common::WebhookDelivery>, next_page_token: String) -> Self::Response;
}

/// `ReplayWebhookEventsRequest` of a service.
pub trait Replay: prost::Message + Sized {
    type Response: prost::Message + Default;
    fn request_id(&self) -> &str;
    fn endpoint_id(&self) -> &str;
    fn after_cursor(&self) -> &str;
    fn answer(queued: i64, next_cursor: String) -> Self::Response;
}

pub async fn create<R: Create>(
    hooks: &Webhooks,
    request: Request<R>,
    domain: &str,
) -> Reply<R::Response> {
    let by = contracts::principal_of(&request);
    let req = request.into_inner();
    let endpoint = hooks
        .create(&by, req.request_id(), &req, req.spec())
        .await
        .map_err(|e| e.into_status(domain))?;
    Ok(Response::new(R::answer(endpoint)))
}

pub async fn list<R: List>(
    hooks: &Webhooks,
    request: Request<R>,
    domain: &str,
) -> Reply<R::Response> {
    let req = request.into_inner();
    let (page_size, page_token) = req.page();
    let (endpoints, next) = hooks
        .list(page_size, page_token)
        .await
        .map_err(|e| e.into_status(domain))?;
    Ok(Response::new(R::answer(endpoints, next)))
}

pub async fn disable<R: Disable>(
    hooks: &Webhooks,
    request: Request<R>,
    domain: &str,
) -> Reply<R::Response> {
    let by = contracts::principal_of(&request);
    let req = request.into_inner();
    let endpoint = hooks
        .disable(&by, req.request_id(), &req, req.endpoint_id(), req.reason())
        .await
        .map_err(|e| e.into_status(domain))?;
    Ok(Response::new(R::answer(endpoint)))
}

pub async fn enable<R: Enable>(
    hooks: &Webhooks,
    request: Request<R>,
    domain: &str,
) -> Reply<R::Response> {
    let by = contracts::principal_of(&request);
    let req = request.into_inner();
    let endpoint = hooks
        .enable(&by, req.request_id(), &req, req.endpoint_id())
        .await
        .map_err(|e| e.into_status(domain))?;
    Ok(Response::new(R::answer(endpoint)))
}

pub async fn delete<R: Delete>(
    hooks: &Webhooks,
    request: Request<R>,
    domain: &str,
) -> Reply<R::Response> {
    let by = contracts::principal_of(&request);
    let req = request.into_inner();
    hooks
        .delete(&by, req.request_id(), &req, req.endpoint_id())
        .await
        .map_err(|e| e.into_status(domain))?;
    Ok(Response::new(R::Response::default()))
}

pub async fn deliveries<R: Deliveries>(
    hooks: &Webhooks,
    request: Request<R>,
    domain: &str,
) -> Reply<R::Response> {
    let req = request.into_inner();
    let (page_size, page_token) = req.page();
    let (deliveries, next) = hooks
        .deliveries(req.endpoint_id(), page_size, page_token)
        .await
        .map_err(|e| e.into_status(domain))?;
    Ok(Response::new(R::answer(deliveries, next)))
}

pub async fn replay<R: Replay>(
    hooks: &Webhooks,
    request: Request<R>,
    domain: &str,
) -> Reply<R::Response> {
    let by = contracts::principal_of(&request);
    let req = request.into_inner();
    let reply = hooks
        .replay(
            &by,
            req.request_id(),
            &req,
            req.endpoint_id(),
            req.after_cursor(),
            R::answer,
        )
        .await
        .map_err(|e| e.into_status(domain))?;
    Ok(Response::new(reply))
}

/// The seven request messages of one service's package, read and answered.
macro_rules! messages {
    ($($pb:ident)::+) => {
        impl Create for $($pb)::+::CreateWebhookEndpointRequest {
            type Response = $($pb)::+::CreateWebhookEndpointResponse;
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn spec(&self) -> Option<common::WebhookEndpointSpec> {
                self.endpoint.clone()
            }
            fn answer(endpoint: common::WebhookEndpoint) -> Self::Response {
                Self::Response { endpoint: Some(endpoint) }
            }
        }

        impl List for $($pb)::+::ListWebhookEndpointsRequest {
            type Response = $($pb)::+::ListWebhookEndpointsResponse;
            fn page(&self) -> (i32, &str) {
                (self.page_size, &self.page_token)
            }
            fn answer(endpoints: Vec<common::WebhookEndpoint>, next_page_token: String) -> Self::Response {
                Self::Response { endpoints, next_page_token }
            }
        }

        impl Disable for $($pb)::+::DisableWebhookEndpointRequest {
            type Response = $($pb)::+::DisableWebhookEndpointResponse;
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn endpoint_id(&self) -> &str {
                &self.endpoint_id
            }
            fn reason(&self) -> &str {
                &self.reason
            }
            fn answer(endpoint: common::WebhookEndpoint) -> Self::Response {
                Self::Response { endpoint: Some(endpoint) }
            }
        }

        impl Enable for $($pb)::+::EnableWebhookEndpointRequest {
            type Response = $($pb)::+::EnableWebhookEndpointResponse;
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn endpoint_id(&self) -> &str {
                &self.endpoint_id
            }
            fn answer(endpoint: common::WebhookEndpoint) -> Self::Response {
                Self::Response { endpoint: Some(endpoint) }
            }
        }

        impl Delete for $($pb)::+::DeleteWebhookEndpointRequest {
            type Response = $($pb)::+::DeleteWebhookEndpointResponse;
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn endpoint_id(&self) -> &str {
                &self.endpoint_id
            }
        }

        impl Deliveries for $($pb)::+::ListWebhookDeliveriesRequest {
            type Response = $($pb)::+::ListWebhookDeliveriesResponse;
            fn endpoint_id(&self) -> &str {
                &self.endpoint_id
            }
            fn page(&self) -> (i32, &str) {
                (self.page_size, &self.page_token)
            }
            fn answer(deliveries: Vec<common::WebhookDelivery>, next_page_token: String) -> Self::Response {
                Self::Response { deliveries, next_page_token }
            }
        }

        impl Replay for $($pb)::+::ReplayWebhookEventsRequest {
            type Response = $($pb)::+::ReplayWebhookEventsResponse;
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn endpoint_id(&self) -> &str {
                &self.endpoint_id
            }
            fn after_cursor(&self) -> &str {
                &self.after_cursor
            }
            fn answer(queued: i64, next_cursor: String) -> Self::Response {
                Self::Response { queued, next_cursor }
            }
        }
    };
}

messages!(contracts::pb::health::v1);
messages!(contracts::pb::pipeline::v1);
messages!(contracts::pb::credit::v1);

/// The seven webhook RPCs of a service's tonic trait, each one call into this
/// module on the service's [`Webhooks`] field, written inside the service's
/// `#[tonic::async_trait]` impl: `webhooks::rpc::webhook_rpcs!(webhooks, crate::DOMAIN);`.
/// The methods come out in the form `async_trait` gives the trait's own
/// (it passes a macro through untouched); the service's messages are named
/// through `pb`, its proto package's module in scope where this is used.
#[macro_export]
macro_rules! webhook_rpcs {
    ($hooks:ident, $domain:expr) => {
        $crate::webhook_rpcs!(@rpc $hooks, $domain, create_webhook_endpoint, create, pb::CreateWebhookEndpointRequest, pb::CreateWebhookEndpointResponse);
        $crate::webhook_rpcs!(@rpc $hooks, $domain, list_webhook_endpoints, list, pb::ListWebhookEndpointsRequest, pb::ListWebhookEndpointsResponse);
        $crate::webhook_rpcs!(@rpc $hooks, $domain, disable_webhook_endpoint, disable, pb::DisableWebhookEndpointRequest, pb::DisableWebhookEndpointResponse);
        $crate::webhook_rpcs!(@rpc $hooks, $domain, enable_webhook_endpoint, enable, pb::EnableWebhookEndpointRequest, pb::EnableWebhookEndpointResponse);
        $crate::webhook_rpcs!(@rpc $hooks, $domain, delete_webhook_endpoint, delete, pb::DeleteWebhookEndpointRequest, pb::DeleteWebhookEndpointResponse);
        $crate::webhook_rpcs!(@rpc $hooks, $domain, list_webhook_deliveries, deliveries, pb::ListWebhookDeliveriesRequest, pb::ListWebhookDeliveriesResponse);
        $crate::webhook_rpcs!(@rpc $hooks, $domain, replay_webhook_events, replay, pb::ReplayWebhookEventsRequest, pb::ReplayWebhookEventsResponse);
    };
    (@rpc $hooks:ident, $domain:expr, $method:ident, $call:ident, $request:ty, $response:ty) => {
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            request: ::tonic::Request<$request>,
        ) -> ::std::pin::Pin<
            Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<::tonic::Response<$response>, ::tonic::Status>,
                    > + ::std::marker::Send
                    + 'async_trait,
            >,
        >
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move { $crate::rpc::$call(&self.$hooks, request, $domain).await })
        }
    };
}
pub use crate::webhook_rpcs;
