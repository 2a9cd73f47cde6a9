//! Which CSV column feeds which field: the fields of each kind of file, the
//! `--map` / `--mapping` formats, and their resolution against a header row.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Accounts,
    Products,
    Subscriptions,
    Signals,
    /// The credit service's people directory (a CRM's users).
    People,
    /// A CRM's open pipeline, as opportunities of the pipeline service.
    Opportunities,
}

/// A field a row of some kind can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub required: bool,
}

const fn required(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        required: true,
    }
}

const fn optional(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        required: false,
    }
}

const ACCOUNT_FIELDS: &[FieldSpec] = &[
    required("external_id"),
    required("name"),
    optional("segment"),
    optional("customer_since"),
    optional("fiscal_year_start_month"),
    optional("owner_csm"),
    optional("parent_external_id"),
];

const PRODUCT_FIELDS: &[FieldSpec] = &[
    required("name"),
    optional("family"),
    optional("tiers"),
    optional("fits_segments"),
    optional("margin_percent"),
];

const SUBSCRIPTION_FIELDS: &[FieldSpec] = &[
    required("external_id"),
    required("account_external_id"),
    required("product"),
    required("mrr"),
    optional("currency"),
    required("start_date"),
    optional("end_date"),
    optional("tier"),
    optional("quantity"),
    optional("quota_limit"),
    optional("mrr_effective_date"),
    optional("cancel_date"),
    optional("cancel_reason"),
];

const SIGNAL_FIELDS: &[FieldSpec] = &[
    required("account_external_id"),
    required("kind"),
    optional("product"),
    optional("value"),
    optional("limit"),
    optional("occur_time"),
    optional("source"),
    optional("external_id"),
    optional("detail"),
];

const OPPORTUNITY_FIELDS: &[FieldSpec] = &[
    required("external_id"),
    required("account_external_id"),
    required("product"),
    required("motion"),
    optional("stage"),
    required("amount"),
    optional("currency"),
    optional("close_date"),
    optional("owner"),
    optional("owner_team"),
    optional("originator"),
    optional("name"),
    optional("need_confirmed"),
    optional("budget_status"),
    optional("decision_process_known"),
    optional("relationship_strength"),
    optional("create_time"),
    optional("stage_enter_time"),
];

const PEOPLE_FIELDS: &[FieldSpec] = &[
    required("person_id"),
    optional("display_name"),
    required("role"),
    optional("team"),
    optional("manager_id"),
];

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accounts => "accounts",
            Self::Products => "products",
            Self::Subscriptions => "subscriptions",
            Self::Signals => "signals",
            Self::People => "people",
            Self::Opportunities => "opportunities",
        }
    }

    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            Self::Accounts => ACCOUNT_FIELDS,
            Self::Products => PRODUCT_FIELDS,
            Self::Subscriptions => SUBSCRIPTION_FIELDS,
            Self::Signals => SIGNAL_FIELDS,
            Self::People => PEOPLE_FIELDS,
            Self::Opportunities => OPPORTUNITY_FIELDS,
        }
    }

    fn field(self, name: &str) -> Option<&'static str> {
        self.fields()
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.name)
    }

    fn parse(name: &str) -> Option<Kind> {
        [
            Self::Accounts,
            Self::Products,
            Self::Subscriptions,
            Self::Signals,
            Self::People,
            Self::Opportunities,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// The field a request's field path (from a `BadRequest` violation)
    /// refers to, and the index of the signal for a `signals[i].…` path.
    pub fn field_of_path(self, path: &str) -> (Option<usize>, Option<&'static str>) {
        let mut index = None;
        let mut rest = path;
        for prefix in ["subscription.", "product.", "person.", "opportunity."] {
            if let Some(r) = rest.strip_prefix(prefix) {
                rest = r;
            }
        }
        if let Some(r) = rest.strip_prefix("signals[")
            && let Some((i, tail)) = r.split_once(']')
        {
            index = i.parse().ok();
            rest = tail.strip_prefix('.').unwrap_or(tail);
        }
        let head = rest.split(['.', '[']).next().unwrap_or_default();
        let name = match (self, head) {
            (_, "external_ref") => "external_id",
            (Self::Accounts, "parent_account_id") => "parent_external_id",
            (Self::Subscriptions | Self::Signals | Self::Opportunities, "account_id") => {
                "account_external_id"
            }
            (Self::Subscriptions | Self::Signals | Self::Opportunities, "product_id") => "product",
            (Self::Opportunities, "amount") if rest.ends_with("currency_code") => "currency",
            (Self::Opportunities, "qualification") => {
                match rest.rsplit('.').next().unwrap_or_default() {
                    "need_confirmed" => "need_confirmed",
                    "budget_status" => "budget_status",
                    "decision_process_known" => "decision_process_known",
                    _ => "relationship_strength",
                }
            }
            (Self::Subscriptions, "mrr") if rest.ends_with("currency_code") => "currency",
            (Self::Subscriptions, "reason") => "cancel_reason",
            (_, other) => other,
        };
        (index, self.field(name))
    }
}

/// Header → field pairs from `--map "Account ID=external_id,Account Name=name"`.
/// A header cannot contain a comma here; a mapping file can name any header.
pub fn parse_inline(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((header, field)) = part.rsplit_once('=') else {
            bail!("--map: {part:?} is not HEADER=field");
        };
        let (header, field) = (header.trim(), field.trim());
        if header.is_empty() || field.is_empty() {
            bail!("--map: {part:?} is not HEADER=field");
        }
        pairs.push((header.to_owned(), field.to_owned()));
    }
    Ok(pairs)
}

/// A field's value map: (CRM value, value read instead).
pub type ValueMap = Vec<(String, String)>;

/// What a mapping file says: header → field pairs, and per field a map of
/// the CRM's values to Expansion's (`"Large Enterprise" = "ENTERPRISE"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub pairs: Vec<(String, String)>,
    /// Field → its value map.
    pub values: Vec<(String, ValueMap)>,
}

/// Header → field pairs and value maps for `kind` from a TOML or JSON
/// mapping file: `"Header" = "field"` entries outside any table apply to
/// every kind, a table named after a kind (`[accounts]`) holds that kind's,
/// and `[accounts.values.segment]` (or `[values.segment]` for every kind)
/// maps a field's values.
pub fn parse_file(path: &Path, kind: Kind) -> anyhow::Result<Mapping> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let document: serde_json::Value = if is_json {
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON mapping", path.display()))?
    } else {
        toml::from_str(&text)
            .with_context(|| format!("{} is not a TOML mapping", path.display()))?
    };
    mapping_of(&document, kind).with_context(|| format!("mapping {}", path.display()))
}

fn kinds_list() -> String {
    [
        Kind::Accounts,
        Kind::Products,
        Kind::Subscriptions,
        Kind::Signals,
        Kind::People,
        Kind::Opportunities,
    ]
    .map(Kind::as_str)
    .join(", ")
}

/// `{"field": {"CRM value": "value"}}` of a `values` table.
fn value_maps(table: &serde_json::Value, at: &str) -> anyhow::Result<Vec<(String, ValueMap)>> {
    let Some(fields) = table.as_object() else {
        bail!("[{at}] must be a table of fields, each a table of \"CRM value\" = \"value\"");
    };
    let mut out = Vec::new();
    for (field, map) in fields {
        let Some(map) = map.as_object() else {
            bail!("[{at}.{field}] must be a table of \"CRM value\" = \"value\"");
        };
        let mut pairs = Vec::new();
        for (from, to) in map {
            let Some(to) = to.as_str() else {
                bail!("[{at}.{field}] {from:?} must map to a text value");
            };
            pairs.push((from.clone(), to.to_owned()));
        }
        out.push((field.clone(), pairs));
    }
    Ok(out)
}

fn mapping_of(document: &serde_json::Value, kind: Kind) -> anyhow::Result<Mapping> {
    let Some(entries) = document.as_object() else {
        bail!("a mapping is a table of \"Header\" = \"field\" entries");
    };
    let mut mapping = Mapping::default();
    for (key, entry) in entries {
        match entry {
            serde_json::Value::String(field) => mapping.pairs.push((key.clone(), field.clone())),
            _ if key == "values" => mapping.values.extend(value_maps(entry, "values")?),
            serde_json::Value::Object(section) => {
                let Some(section_kind) = Kind::parse(key) else {
                    bail!("[{key}] is not a kind of file ({})", kinds_list());
                };
                for (header, field) in section {
                    match field {
                        serde_json::Value::String(field) if section_kind == kind => {
                            mapping.pairs.push((header.clone(), field.clone()));
                        }
                        serde_json::Value::String(_) => {}
                        _ if header == "values" => {
                            let maps = value_maps(field, &format!("{key}.values"))?;
                            if section_kind == kind {
                                mapping.values.extend(maps);
                            }
                        }
                        _ => bail!("[{key}] {header:?} must name a field"),
                    }
                }
            }
            _ => bail!("{key:?} must name a field, or be a table of a kind of file"),
        }
    }
    Ok(mapping)
}

fn same_header(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The columns of one file, resolved: which column each field reads.
#[derive(Debug, Clone)]
pub struct Columns {
    headers: Vec<String>,
    index: HashMap<&'static str, usize>,
    /// Field → (CRM value, value read instead), from the mapping's value maps.
    values: HashMap<&'static str, ValueMap>,
}

impl Columns {
    /// Resolves `pairs` (header → field) against the file's `headers`. A
    /// header that the pairs don't name feeds the field of the same name.
    #[cfg(test)]
    pub fn resolve(
        kind: Kind,
        headers: &[String],
        pairs: &[(String, String)],
    ) -> anyhow::Result<Columns> {
        Self::resolve_with_values(kind, headers, pairs, &[])
    }

    /// Resolves `pairs` (header → field) against the file's `headers`, with
    /// value maps per field. A header that the pairs don't name feeds the
    /// field of the same name.
    pub fn resolve_with_values(
        kind: Kind,
        headers: &[String],
        pairs: &[(String, String)],
        value_maps: &[(String, ValueMap)],
    ) -> anyhow::Result<Columns> {
        let mut values: HashMap<&'static str, ValueMap> = HashMap::new();
        for (field, map) in value_maps {
            let Some(name) = kind.field(field.trim()) else {
                let known: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
                bail!(
                    "the value map of {field:?}: not a field of {}; they are: {}",
                    kind.as_str(),
                    known.join(", ")
                );
            };
            values.entry(name).or_default().extend(map.iter().cloned());
        }
        let mut index: HashMap<&'static str, usize> = HashMap::new();
        let mut used = vec![false; headers.len()];
        for (header, field) in pairs {
            let Some(name) = kind.field(field.trim()) else {
                let known: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
                bail!(
                    "{field:?} is not a field of {}; they are: {}",
                    kind.as_str(),
                    known.join(", ")
                );
            };
            let Some(column) = headers.iter().position(|h| same_header(h, header)) else {
                bail!("the mapping names column {header:?}, which the file does not have");
            };
            if index.insert(name, column).is_some() {
                bail!("the mapping gives {name} two columns");
            }
            used[column] = true;
        }
        for (column, header) in headers.iter().enumerate() {
            if used[column] {
                continue;
            }
            if let Some(spec) = kind.fields().iter().find(|f| same_header(f.name, header))
                && !index.contains_key(spec.name)
            {
                index.insert(spec.name, column);
                used[column] = true;
            }
        }
        let missing: Vec<&str> = kind
            .fields()
            .iter()
            .filter(|f| f.required && !index.contains_key(f.name))
            .map(|f| f.name)
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} need a column for {} (name the column after the field, or map it with --map \"HEADER=field\")",
                kind.as_str(),
                missing.join(", ")
            );
        }
        Ok(Columns {
            headers: headers.to_vec(),
            index,
            values,
        })
    }

    /// The cell of `field` in `record`, or what the value map says for it
    /// (CRM values compared trimmed, case ignored); `None` when no column
    /// feeds the field.
    pub fn get<'r>(&'r self, record: &'r csv::StringRecord, field: &str) -> Option<&'r str> {
        let cell = self
            .index
            .get(field)
            .map(|&column| record.get(column).unwrap_or_default())?;
        let mapped = self.values.get(field).and_then(|map| {
            map.iter()
                .find(|(from, _)| same_header(from, cell))
                .map(|(_, to)| to.as_str())
        });
        Some(mapped.unwrap_or(cell))
    }

    /// The header of the column that feeds `field`.
    pub fn header_of(&self, field: &str) -> Option<&str> {
        self.index
            .get(field)
            .and_then(|&column| self.headers.get(column))
            .map(String::as_str)
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Headers no field reads.
    pub fn ignored(&self) -> Vec<&str> {
        self.headers
            .iter()
            .enumerate()
            .filter(|(column, _)| !self.index.values().any(|c| c == column))
            .map(|(_, h)| h.as_str())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn inline_maps_read_header_equals_field() {
        let pairs = parse_inline("Account ID=external_id, Account Name = name,").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("Account ID".to_owned(), "external_id".to_owned()),
                ("Account Name".to_owned(), "name".to_owned())
            ]
        );
        assert!(parse_inline("Account ID").is_err());
        assert!(parse_inline("=name").is_err());
    }

    #[test]
    fn mapping_files_have_shared_and_per_kind_entries() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("m.toml");
        std::fs::write(
            &toml_path,
            "\"Account ID\" = \"external_id\"\n[accounts]\n\"Account Name\" = \"name\"\n[signals]\n\"Type\" = \"kind\"\n",
        )
        .unwrap();
        let mut accounts = parse_file(&toml_path, Kind::Accounts).unwrap().pairs;
        accounts.sort();
        assert_eq!(
            accounts,
            vec![
                ("Account ID".to_owned(), "external_id".to_owned()),
                ("Account Name".to_owned(), "name".to_owned())
            ]
        );
        let signals = parse_file(&toml_path, Kind::Signals).unwrap().pairs;
        assert!(signals.contains(&("Type".to_owned(), "kind".to_owned())));
        assert!(!signals.iter().any(|(h, _)| h == "Account Name"));

        let json_path = dir.path().join("m.json");
        std::fs::write(&json_path, r#"{"products": {"Product Name": "name"}}"#).unwrap();
        assert_eq!(
            parse_file(&json_path, Kind::Products).unwrap().pairs,
            vec![("Product Name".to_owned(), "name".to_owned())]
        );
        std::fs::write(&json_path, r#"{"deals": {"Amount": "mrr"}}"#).unwrap();
        let err = format!("{:#}", parse_file(&json_path, Kind::Products).unwrap_err());
        assert!(err.contains("[deals] is not a kind"), "{err}");
    }

    #[test]
    fn value_maps_turn_crm_picklist_values_into_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            "[accounts]\n\"Tier\" = \"segment\"\n[accounts.values.segment]\n\"Large Enterprise\" = \"ENTERPRISE\"\n\"Mid Market\" = \"MID_MARKET\"\n[values.owner_csm]\n\"Carla O.\" = \"carla.csm\"\n[signals.values.kind]\n\"Logins\" = \"LOGIN\"\n",
        )
        .unwrap();
        let mapping = parse_file(&path, Kind::Accounts).unwrap();
        assert_eq!(
            mapping.pairs,
            vec![("Tier".to_owned(), "segment".to_owned())]
        );
        let columns = Columns::resolve_with_values(
            Kind::Accounts,
            &headers(&["external_id", "name", "Tier", "owner_csm"]),
            &mapping.pairs,
            &mapping.values,
        )
        .unwrap();
        let record = csv::StringRecord::from(vec!["1", "Acme", " large enterprise ", "Carla O."]);
        assert_eq!(columns.get(&record, "segment"), Some("ENTERPRISE"));
        assert_eq!(columns.get(&record, "owner_csm"), Some("carla.csm"));
        let other = csv::StringRecord::from(vec!["1", "Acme", "SMB", "ben"]);
        assert_eq!(
            columns.get(&other, "segment"),
            Some("SMB"),
            "unmapped values pass"
        );
        // The signals' map is not the accounts'.
        assert_eq!(parse_file(&path, Kind::Signals).unwrap().values.len(), 2);
        let err = Columns::resolve_with_values(
            Kind::Accounts,
            &headers(&["external_id", "name"]),
            &[],
            &[("tier".to_owned(), vec![])],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a field of accounts"), "{err}");
    }

    #[test]
    fn columns_default_to_field_names_and_mapping_wins() {
        let h = headers(&["Account ID", "NAME", "Segment", "Billing City", "name"]);
        let pairs = vec![("account id".to_owned(), "external_id".to_owned())];
        let columns = Columns::resolve(Kind::Accounts, &h, &pairs).unwrap();
        let record = csv::StringRecord::from(vec!["001", "Acme", "SMB", "Paris", "other"]);
        assert_eq!(columns.get(&record, "external_id"), Some("001"));
        // The first column named after the field feeds it.
        assert_eq!(columns.get(&record, "name"), Some("Acme"));
        assert_eq!(columns.get(&record, "segment"), Some("SMB"));
        assert_eq!(columns.get(&record, "owner_csm"), None);
        assert_eq!(columns.header_of("external_id"), Some("Account ID"));
        assert_eq!(columns.ignored(), vec!["Billing City", "name"]);
    }

    #[test]
    fn bad_mappings_are_explained() {
        let h = headers(&["Id", "Name"]);
        let err = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect();
            Columns::resolve(Kind::Accounts, &h, &pairs)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[("Id", "crm_id")]).contains("not a field of accounts"));
        assert!(err(&[("Account ID", "external_id")]).contains("does not have"));
        assert!(err(&[("Id", "external_id"), ("Name", "external_id")]).contains("two columns"));
        assert!(err(&[]).contains("need a column for external_id"));
    }

    #[test]
    fn server_field_paths_name_csv_fields() {
        assert_eq!(
            Kind::Subscriptions.field_of_path("subscription.mrr.amount"),
            (None, Some("mrr"))
        );
        assert_eq!(
            Kind::Subscriptions.field_of_path("subscription.mrr.currency_code"),
            (None, Some("currency"))
        );
        assert_eq!(
            Kind::Subscriptions.field_of_path("subscription.account_id"),
            (None, Some("account_external_id"))
        );
        assert_eq!(
            Kind::Signals.field_of_path("signals[17].value"),
            (Some(17), Some("value"))
        );
        assert_eq!(
            Kind::Signals.field_of_path("signals[3].product_id"),
            (Some(3), Some("product"))
        );
        assert_eq!(
            Kind::Accounts.field_of_path("external_ref.id"),
            (None, Some("external_id"))
        );
        assert_eq!(
            Kind::Accounts.field_of_path("parent_account_id"),
            (None, Some("parent_external_id"))
        );
        assert_eq!(
            Kind::Products.field_of_path("product.tiers[2]"),
            (None, Some("tiers"))
        );
        assert_eq!(Kind::Accounts.field_of_path("request_id"), (None, None));
    }
}
