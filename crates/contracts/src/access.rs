//! Who may call what: the roles an API key carries and the one method × role
//! matrix every call is checked against. README renders the same table (a
//! test keeps the two equal), so what operators read is what the server does.

use std::fmt;

/// The role an API key grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including the admin-only operations.
    Admin,
    /// Revenue operations: runs the motion, approves credits, tunes scorecards.
    Revops,
    /// Customer Success: signals, health overrides, opportunities, handoff requests.
    Csm,
    /// Account executives: work deals, accept or reject handoffs.
    Ae,
    /// CRM and billing connectors, and service-to-service calls: ingestion and
    /// sync writes, plus reads.
    Connector,
    /// Read-only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Revops,
        Role::Csm,
        Role::Ae,
        Role::Connector,
        Role::Viewer,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Revops => "revops",
            Role::Csm => "csm",
            Role::Ae => "ae",
            Role::Connector => "connector",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a role name (`admin`, `revops`, `csm`, `ae`, `connector`, `viewer`).
    pub fn parse(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {text:?}; one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the matrix: who may call `service/method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Fully qualified service name, e.g. `expansion.health.v1.AccountHealthService`.
    pub service: &'static str,
    pub method: &'static str,
    pub roles: &'static [Role],
    /// What the row does not say by itself (an admin-only part of a method).
    pub note: &'static str,
    /// Which rows a role that may call the method sees or may change (people's
    /// pay is private; separation of duties). The service enforces it; this
    /// text is what README shows.
    pub rows: &'static str,
}

impl Rule {
    pub fn allows(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The same row with its row-level rule.
    const fn rows(mut self, rows: &'static str) -> Rule {
        self.rows = rows;
        self
    }
}

pub const HEALTH_SERVICE: &str = "expansion.health.v1.AccountHealthService";
pub const PIPELINE_SERVICE: &str = "expansion.pipeline.v1.OpportunityPipelineService";
pub const CREDIT_SERVICE: &str = "expansion.credit.v1.CompensationCreditService";

/// Services anyone may call, keyed or not: probes and `grpcurl list` need them.
pub const OPEN_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

use Role::{Admin, Ae, Connector, Csm, Revops, Viewer};

/// Every role: the read methods.
const EVERYONE: &[Role] = &[Admin, Revops, Csm, Ae, Connector, Viewer];
/// Ingestion and sync from CRM and billing systems.
const SYNC: &[Role] = &[Admin, Revops, Connector];
/// Who may say when a write happened in the source system (`occur_time` on
/// the pipeline's writes): the roles that import, the same as sync.
pub const IMPORT_ROLES: &[Role] = SYNC;
/// The people who work deals.
const DEAL_TEAM: &[Role] = &[Admin, Revops, Csm, Ae];
const ADMIN_ONLY: &[Role] = &[Admin];
/// Who sends a parked delivery between services again.
const OPERATORS: &[Role] = &[Admin, Revops];

const fn rule(
    service: &'static str,
    method: &'static str,
    roles: &'static [Role],
    note: &'static str,
) -> Rule {
    Rule {
        service,
        method,
        roles,
        note,
        rows: "",
    }
}

/// The method × role matrix, one row per RPC of the three services, in the
/// order of the protos. A method missing here is refused to everyone but
/// admin (fail closed); a test checks every RPC has its row.
pub const MATRIX: &[Rule] = &[
    // expansion.health.v1.AccountHealthService
    rule(HEALTH_SERVICE, "UpsertAccount", SYNC, ""),
    rule(HEALTH_SERVICE, "GetAccount", EVERYONE, ""),
    rule(HEALTH_SERVICE, "ListAccounts", EVERYONE, ""),
    rule(HEALTH_SERVICE, "UpsertProduct", SYNC, ""),
    rule(HEALTH_SERVICE, "ListProducts", EVERYONE, ""),
    rule(HEALTH_SERVICE, "GetProduct", EVERYONE, ""),
    rule(HEALTH_SERVICE, "UpsertSubscription", SYNC, ""),
    rule(HEALTH_SERVICE, "CancelSubscription", SYNC, ""),
    rule(HEALTH_SERVICE, "ApplyUpsell", SYNC, ""),
    rule(HEALTH_SERVICE, "ListSubscriptions", EVERYONE, ""),
    rule(
        HEALTH_SERVICE,
        "RecordSignals",
        &[Admin, Revops, Csm, Connector],
        "",
    ),
    rule(
        HEALTH_SERVICE,
        "StreamSignals",
        &[Admin, Revops, Csm, Connector],
        "",
    ),
    rule(HEALTH_SERVICE, "UpsertScorecard", &[Admin, Revops], ""),
    rule(HEALTH_SERVICE, "GetScorecard", EVERYONE, ""),
    rule(HEALTH_SERVICE, "ListScorecards", EVERYONE, ""),
    rule(HEALTH_SERVICE, "GetAccountHealth", EVERYONE, ""),
    rule(HEALTH_SERVICE, "ListAccountHealth", EVERYONE, ""),
    rule(HEALTH_SERVICE, "GetHealthHistory", EVERYONE, ""),
    rule(HEALTH_SERVICE, "OverrideHealth", &[Admin, Revops, Csm], ""),
    rule(HEALTH_SERVICE, "ListTriggers", EVERYONE, ""),
    rule(HEALTH_SERVICE, "GetTrigger", EVERYONE, ""),
    rule(HEALTH_SERVICE, "ConvertTrigger", SYNC, ""),
    rule(HEALTH_SERVICE, "CloseTrigger", SYNC, ""),
    rule(HEALTH_SERVICE, "GetRevenueMetrics", EVERYONE, ""),
    rule(HEALTH_SERVICE, "GetCohortRevenue", EVERYONE, ""),
    rule(HEALTH_SERVICE, "WatchEvents", EVERYONE, ""),
    rule(HEALTH_SERVICE, "ListDeliveries", EVERYONE, ""),
    rule(HEALTH_SERVICE, "RetryDelivery", OPERATORS, ""),
    rule(HEALTH_SERVICE, "CreateWebhookEndpoint", SYNC, ""),
    rule(HEALTH_SERVICE, "ListWebhookEndpoints", SYNC, ""),
    rule(HEALTH_SERVICE, "DisableWebhookEndpoint", SYNC, ""),
    rule(HEALTH_SERVICE, "EnableWebhookEndpoint", SYNC, ""),
    rule(HEALTH_SERVICE, "DeleteWebhookEndpoint", SYNC, ""),
    rule(HEALTH_SERVICE, "ListWebhookDeliveries", SYNC, ""),
    rule(HEALTH_SERVICE, "ReplayWebhookEvents", SYNC, ""),
    // expansion.pipeline.v1.OpportunityPipelineService
    rule(PIPELINE_SERVICE, "CreateOpportunity", DEAL_TEAM, ""),
    rule(
        PIPELINE_SERVICE,
        "CreateOpportunityFromTrigger",
        DEAL_TEAM,
        "",
    ),
    rule(PIPELINE_SERVICE, "GetOpportunity", EVERYONE, ""),
    rule(PIPELINE_SERVICE, "ListOpportunities", EVERYONE, ""),
    rule(PIPELINE_SERVICE, "UpdateOpportunity", DEAL_TEAM, ""),
    rule(
        PIPELINE_SERVICE,
        "AdvanceStage",
        DEAL_TEAM,
        "`reopen`: admin only",
    ),
    rule(PIPELINE_SERVICE, "CloseOpportunity", DEAL_TEAM, ""),
    rule(PIPELINE_SERVICE, "GetOpportunityHistory", EVERYONE, ""),
    rule(PIPELINE_SERVICE, "ScoreQualification", EVERYONE, ""),
    rule(PIPELINE_SERVICE, "RouteOpportunity", EVERYONE, ""),
    rule(
        PIPELINE_SERVICE,
        "RequestHandoff",
        &[Admin, Revops, Csm],
        "",
    ),
    rule(PIPELINE_SERVICE, "AcceptHandoff", &[Admin, Revops, Ae], ""),
    rule(PIPELINE_SERVICE, "RejectHandoff", &[Admin, Revops, Ae], ""),
    rule(PIPELINE_SERVICE, "ListHandoffs", EVERYONE, ""),
    rule(
        PIPELINE_SERVICE,
        "UpsertWalletEstimate",
        &[Admin, Revops, Csm, Ae, Connector],
        "",
    ),
    rule(PIPELINE_SERVICE, "GetWhitespace", EVERYONE, ""),
    rule(PIPELINE_SERVICE, "GetPipelineForecast", EVERYONE, ""),
    rule(PIPELINE_SERVICE, "GetTeamPerformance", EVERYONE, "").rows(
        "csm, ae: own row (and managed team's rows and total); viewer: team and organisation totals",
    ),
    rule(PIPELINE_SERVICE, "GetWalletShareHistory", EVERYONE, ""),
    rule(PIPELINE_SERVICE, "WatchEvents", EVERYONE, ""),
    rule(PIPELINE_SERVICE, "ListDeliveries", EVERYONE, ""),
    rule(PIPELINE_SERVICE, "RetryDelivery", OPERATORS, ""),
    rule(PIPELINE_SERVICE, "CreateWebhookEndpoint", SYNC, ""),
    rule(PIPELINE_SERVICE, "ListWebhookEndpoints", SYNC, ""),
    rule(PIPELINE_SERVICE, "DisableWebhookEndpoint", SYNC, ""),
    rule(PIPELINE_SERVICE, "EnableWebhookEndpoint", SYNC, ""),
    rule(PIPELINE_SERVICE, "DeleteWebhookEndpoint", SYNC, ""),
    rule(PIPELINE_SERVICE, "ListWebhookDeliveries", SYNC, ""),
    rule(PIPELINE_SERVICE, "ReplayWebhookEvents", SYNC, ""),
    // expansion.credit.v1.CompensationCreditService
    rule(CREDIT_SERVICE, "UpsertCreditPolicy", ADMIN_ONLY, ""),
    rule(CREDIT_SERVICE, "GetCreditPolicy", EVERYONE, ""),
    rule(CREDIT_SERVICE, "RecordDealCredits", SYNC, ""),
    rule(CREDIT_SERVICE, "ReplaceDealSplits", &[Admin, Revops], "")
        .rows("not a deal that credits the caller"),
    rule(CREDIT_SERVICE, "GetDealCredits", EVERYONE, "").rows(
        "csm, ae: deals they (or their managed team) take part in, own entries only; viewer: none",
    ),
    rule(CREDIT_SERVICE, "ApproveCredits", &[Admin, Revops], "")
        .rows("not an entry credited to the caller"),
    rule(CREDIT_SERVICE, "ApplyClawback", SYNC, ""),
    rule(CREDIT_SERVICE, "ListLedgerEntries", EVERYONE, "")
        .rows("csm, ae: own entries (and managed team's); viewer: none"),
    rule(CREDIT_SERVICE, "OpenDispute", DEAL_TEAM, "").rows("csm, ae: own entries only"),
    rule(CREDIT_SERVICE, "ResolveDispute", ADMIN_ONLY, "")
        .rows("not an entry credited to the caller"),
    rule(CREDIT_SERVICE, "GetStatement", EVERYONE, "").rows(
        "csm, ae: own statement (and managed team's); viewer: team and organisation totals, no entries",
    ),
    rule(CREDIT_SERVICE, "WatchEvents", EVERYONE, "")
        .rows("csm, ae: events of own entries (and managed team's); viewer: none of a person's"),
    rule(CREDIT_SERVICE, "UpsertPerson", SYNC, ""),
    rule(CREDIT_SERVICE, "GetPerson", EVERYONE, ""),
    rule(CREDIT_SERVICE, "ListPeople", EVERYONE, ""),
    rule(CREDIT_SERVICE, "ListDisputes", EVERYONE, "")
        .rows("csm, ae: disputes of own entries (and managed team's); viewer: none"),    rule(CREDIT_SERVICE, "CreateWebhookEndpoint", SYNC, "")
        .rows("every credit event: the roles that may register read every entry"),
    rule(CREDIT_SERVICE, "ListWebhookEndpoints", SYNC, ""),
    rule(CREDIT_SERVICE, "DisableWebhookEndpoint", SYNC, ""),
    rule(CREDIT_SERVICE, "EnableWebhookEndpoint", SYNC, ""),
    rule(CREDIT_SERVICE, "DeleteWebhookEndpoint", SYNC, ""),
    rule(CREDIT_SERVICE, "ListWebhookDeliveries", SYNC, ""),
    rule(CREDIT_SERVICE, "ReplayWebhookEvents", SYNC, ""),
];

/// `(service, method)` of a gRPC path `/package.Service/Method`.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// Whether a path belongs to a service anyone may call.
pub fn is_open(path: &str) -> bool {
    split_path(path).is_some_and(|(service, _)| OPEN_SERVICES.contains(&service))
}

/// The row of a gRPC path, if the matrix has one.
pub fn rule_for(path: &str) -> Option<&'static Rule> {
    let (service, method) = split_path(path)?;
    MATRIX
        .iter()
        .find(|r| r.service == service && r.method == method)
}

/// Whether `role` may call `path`. Admin may call anything; any other role
/// only what its row lists, so a method without a row is refused.
pub fn allows(path: &str, role: Role) -> bool {
    role == Role::Admin || rule_for(path).is_some_and(|r| r.allows(role))
}

fn short_service(service: &str) -> &str {
    service.rsplit('.').next().unwrap_or(service)
}

/// The matrix as the Markdown table README shows.
pub fn markdown_table() -> String {
    let mut out = String::from("| service | method |");
    for role in Role::ALL {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str(" row-level | note |\n|---|---|");
    for _ in Role::ALL {
        out.push_str(":-:|");
    }
    out.push_str("---|---|\n");
    for rule in MATRIX {
        out.push_str(&format!(
            "| {} | `{}` |",
            short_service(rule.service),
            rule.method
        ));
        for role in Role::ALL {
            out.push_str(if rule.allows(role) { " ✓ |" } else { " |" });
        }
        for text in [rule.rows, rule.note] {
            if text.is_empty() {
                out.push_str(" |");
            } else {
                out.push_str(&format!(" {text} |"));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost::Message;
    use std::collections::BTreeSet;

    /// Every `(service, method)` of the Expansion protos, from the same
    /// descriptor set reflection serves.
    fn rpcs() -> BTreeSet<(String, String)> {
        let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let mut out = BTreeSet::new();
        for file in set.file {
            let package = file.package().to_owned();
            if !package.starts_with("expansion.") {
                continue;
            }
            for service in &file.service {
                for method in &service.method {
                    out.insert((
                        format!("{package}.{}", service.name()),
                        method.name().to_owned(),
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn every_rpc_has_exactly_one_row_and_every_row_an_rpc() {
        let rows: Vec<(String, String)> = MATRIX
            .iter()
            .map(|r| (r.service.to_owned(), r.method.to_owned()))
            .collect();
        let unique: BTreeSet<(String, String)> = rows.iter().cloned().collect();
        assert_eq!(unique.len(), rows.len(), "a method has two rows");
        let rpcs = rpcs();
        let missing: Vec<_> = rpcs.difference(&unique).collect();
        assert!(missing.is_empty(), "RPCs without a matrix row: {missing:?}");
        let stale: Vec<_> = unique.difference(&rpcs).collect();
        assert!(stale.is_empty(), "matrix rows of no RPC: {stale:?}");
        assert_eq!(rows.len(), 87);
    }

    #[test]
    fn admin_may_call_everything_and_viewer_only_reads() {
        for rule in MATRIX {
            assert!(rule.allows(Role::Admin), "{} lacks admin", rule.method);
            // Webhook endpoints name connectors' URLs: theirs to read.
            if rule.method.contains("Webhook") {
                assert_eq!(rule.roles, SYNC, "{} is a connector's", rule.method);
                continue;
            }
            let read = ["Get", "List", "Watch", "Score", "Route"]
                .iter()
                .any(|p| rule.method.starts_with(p));
            assert_eq!(
                rule.allows(Role::Viewer),
                read,
                "viewer on {}/{}",
                rule.service,
                rule.method
            );
            if read {
                assert_eq!(rule.roles, EVERYONE, "{} is a read", rule.method);
            }
        }
    }

    #[test]
    fn roles_get_what_their_work_needs() {
        let path = |service: &str, method: &str| format!("/{service}/{method}");
        let may = |role, service, method| allows(&path(service, method), role);
        // CS requests handoffs, Sales accepts them.
        assert!(may(Role::Csm, PIPELINE_SERVICE, "RequestHandoff"));
        assert!(!may(Role::Csm, PIPELINE_SERVICE, "AcceptHandoff"));
        assert!(may(Role::Ae, PIPELINE_SERVICE, "AcceptHandoff"));
        assert!(!may(Role::Ae, PIPELINE_SERVICE, "RequestHandoff"));
        // What one service asks of another is a connector's work.
        for (service, method) in [
            (HEALTH_SERVICE, "UpsertSubscription"),
            (HEALTH_SERVICE, "GetAccountHealth"),
            (HEALTH_SERVICE, "GetTrigger"),
            (HEALTH_SERVICE, "ListProducts"),
            (HEALTH_SERVICE, "GetProduct"),
            (HEALTH_SERVICE, "GetAccount"),
            (HEALTH_SERVICE, "ListSubscriptions"),
            (CREDIT_SERVICE, "RecordDealCredits"),
            (CREDIT_SERVICE, "ApplyClawback"),
        ] {
            assert!(may(Role::Connector, service, method), "{method}");
        }
        assert!(!may(Role::Connector, PIPELINE_SERVICE, "AdvanceStage"));
        // Policy and dispute rulings are the admin's; RevOps does the rest.
        assert!(!may(Role::Revops, CREDIT_SERVICE, "UpsertCreditPolicy"));
        assert!(!may(Role::Revops, CREDIT_SERVICE, "ResolveDispute"));
        assert!(may(Role::Revops, CREDIT_SERVICE, "ApproveCredits"));
        assert!(may(Role::Admin, CREDIT_SERVICE, "ResolveDispute"));
    }

    #[test]
    fn unknown_methods_are_refused_to_all_but_admin() {
        let path = format!("/{HEALTH_SERVICE}/DropEverything");
        for role in Role::ALL {
            assert_eq!(allows(&path, role), role == Role::Admin, "{role}");
        }
        assert!(!allows("not a path", Role::Viewer));
    }

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/expansion.health.v1.AccountHealthService/GetAccount"),
            Some(("expansion.health.v1.AccountHealthService", "GetAccount"))
        );
        assert_eq!(split_path("/svc/"), None);
        assert_eq!(split_path("svc/m"), None);
        assert_eq!(split_path("/a/b/c"), None);
        assert!(is_open("/grpc.health.v1.Health/Check"));
        assert!(is_open(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_open(
            "/expansion.health.v1.AccountHealthService/GetAccount"
        ));
    }

    #[test]
    fn roles_parse_from_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        let err = Role::parse("root").unwrap_err();
        assert!(err.contains("admin, revops, csm, ae, connector, viewer"));
    }

    #[test]
    fn readme_shows_the_matrix_in_force() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
        assert!(
            readme.contains(&markdown_table()),
            "README's method × role table differs from contracts::access::MATRIX; \
             paste this table into README:\n{}",
            markdown_table()
        );
    }
}
