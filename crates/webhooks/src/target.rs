//! Where a webhook may be sent (SSRF): an `http(s)://` URL whose host
//! resolves only to public addresses, unless private targets are allowed.
//! The address checked is the address connected to, so a name that
//! resolves differently a second time (DNS rebinding) gains nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hyper::Uri;

/// Longest URL accepted, in bytes.
pub const MAX_URL: usize = 2048;

/// A parsed endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// `host[:port]`, for the `Host` header.
    pub authority: String,
    pub path_and_query: String,
}

/// Parses an endpoint URL: `http` or `https`, a host, no user info.
pub fn parse(url: &str) -> Result<Target, String> {
    if url.is_empty() {
        return Err("is required".into());
    }
    if url.len() > MAX_URL {
        return Err(format!("is longer than {MAX_URL} bytes"));
    }
    let uri: Uri = url.parse().map_err(|e| format!("is not a URL: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("must start with https:// or http://".into()),
    };
    let authority = uri.authority().ok_or("names no host")?;
    if authority.as_str().contains('@') {
        return Err("must not carry a user name or password".into());
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err("names no host".into());
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    Ok(Target {
        https,
        host,
        port,
        authority: authority.as_str().to_owned(),
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
    })
}

/// Whether `ip` is an address a webhook must not reach by default:
/// loopback, private, link-local, unspecified, shared (CGNAT), multicast,
/// broadcast, documentation and reserved ranges, and their IPv6 forms.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || v6.segments()[..2] == [0x2001, 0x0db8] // documentation
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible
                || v6.segments()[..2] == [0x0064, 0xff9b] // NAT64
                || v6 == Ipv6Addr::UNSPECIFIED
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

/// The addresses `target` may be reached at: every address its host
/// resolves to, refused when any of them is private and private targets are
/// not allowed (a name that also points inside is not one to trust).
pub async fn resolve(target: &Target, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("{} does not resolve: {e}", target.host))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("{} resolves to no address", target.host));
    }
    if !allow_private && let Some(private) = addrs.iter().find(|a| is_private(a.ip())) {
        return Err(format!(
            "{} resolves to {}, a private, loopback or link-local address (allowed only with --webhooks-allow-private)",
            target.host,
            private.ip()
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_their_parts() {
        let t = parse("https://hooks.example.com/in?x=1").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path_and_query.as_str()),
            (true, "hooks.example.com", 443, "/in?x=1")
        );
        let t = parse("http://[::1]:8080").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path_and_query.as_str()),
            ("::1", 8080, "/")
        );
        for bad in [
            "",
            "ftp://x/",
            "hooks.example.com/in",
            "https://user:pw@x.com/",
            "http:///x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn private_targets_need_the_flag() {
        let loopback = parse("http://127.0.0.1:9/").unwrap();
        assert!(resolve(&loopback, false).await.is_err());
        assert_eq!(resolve(&loopback, true).await.unwrap().len(), 1);
        let named = parse("http://localhost:9/").unwrap();
        assert!(
            resolve(&named, false)
                .await
                .unwrap_err()
                .contains("--webhooks-allow-private")
        );
    }
}
