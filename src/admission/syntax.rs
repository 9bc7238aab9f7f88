//! Name and value syntax the apiserver enforces on the objects the operator will create. Checking
//! them at admission turns a reconcile-time failure into an error at `kubectl apply`.

/// RFC 1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric, <= 63.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "must be no more than 63 characters (has {})",
            s.len()
        ));
    }
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !ok_chars || !ends_ok(s.as_bytes().first()) || !ends_ok(s.as_bytes().last()) {
        return Err(
            "must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')"
                .into(),
        );
    }
    Ok(())
}

/// RFC 1035 label, the rule for Service names: like a 1123 label but starting with a letter.
pub fn dns1035_label(s: &str) -> Result<(), String> {
    dns1123_label(s)?;
    if !s.as_bytes()[0].is_ascii_lowercase() {
        return Err(
            "must start with a lower case letter (it names Services, which follow RFC 1035)".into(),
        );
    }
    Ok(())
}

/// RFC 1123 subdomain: dot-separated labels, <= 253 (names of Secrets, ServiceAccounts, ...).
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 253 {
        return Err(format!(
            "must be no more than 253 characters (has {})",
            s.len()
        ));
    }
    if s.split('.').any(|part| dns1123_label(part).is_err()) {
        return Err(
            "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
                .into(),
        );
    }
    Ok(())
}

/// A host name that may start with `*.`, as used in certificate SANs and domains.
pub fn dns_host(s: &str) -> Result<(), String> {
    let host = s.strip_prefix("*.").unwrap_or(s);
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return Err("must be a DNS name of 1 to 253 characters".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.split('.').all(label_ok) {
        return Err(
            "must be a DNS name: labels of letters, digits and '-', separated by '.'".into(),
        );
    }
    Ok(())
}

/// A label or annotation key: `[prefix/]name`, name <= 63 of alphanumerics, '-', '_', '.'.
pub fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        dns1123_subdomain(p).map_err(|e| format!("prefix {e}"))?;
    }
    if name.is_empty() || name.len() > 63 {
        return Err("name part must be 1 to 63 characters".into());
    }
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        || !alnum(name.as_bytes().first())
        || !alnum(name.as_bytes().last())
    {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

/// A label value: empty, or <= 63 of alphanumerics, '-', '_', '.', alphanumeric at both ends.
pub fn label_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    if v.len() > 63 {
        return Err(format!(
            "must be no more than 63 characters (has {})",
            v.len()
        ));
    }
    qualified_name(v).map_err(|_| {
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".to_owned()
    })
}

/// S3 bucket naming rules: 3-63 of lowercase letters, digits, '.', '-', alphanumeric at both
/// ends, no '..', not an IPv4 address.
pub fn bucket_name(s: &str) -> Result<(), String> {
    if s.len() < 3 || s.len() > 63 {
        return Err(format!("must be 3 to 63 characters (has {})", s.len()));
    }
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        || !alnum(s.as_bytes().first())
        || !alnum(s.as_bytes().last())
        || s.contains("..")
    {
        return Err("must be lower case letters, digits, '.' and '-', start and end with a letter or digit, and have no '..'".into());
    }
    if s.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not be formatted as an IP address".into());
    }
    Ok(())
}

/// An environment variable name as the kubelet accepts it: printable ASCII without '='.
pub fn env_var_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if !s.bytes().all(|b| (32..=126).contains(&b) && b != b'=') {
        return Err("must consist of printable ASCII characters other than '='".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(dns1123_label("ss-0").is_ok());
        assert!(dns1123_label("0pool").is_ok());
        assert!(dns1035_label("0pool").is_err());
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(dns1123_label(bad).is_err(), "{bad}");
        }
        assert!(dns1123_subdomain("tls.example-1").is_ok());
        assert!(dns1123_subdomain("a..b").is_err());
    }

    #[test]
    fn label_keys_values_hosts_buckets() {
        assert!(qualified_name("app.kubernetes.io/name").is_ok());
        assert!(qualified_name("bad key").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_x").is_ok());
        assert!(label_value("-x").is_err());
        assert!(dns_host("*.example.com").is_ok());
        assert!(dns_host("exa mple.com").is_err());
        assert!(bucket_name("my-bucket.1").is_ok());
        assert!(bucket_name("192.168.1.1").is_err());
        assert!(bucket_name("Bucket").is_err());
        assert!(env_var_name("S3_X").is_ok());
        assert!(env_var_name("A=B").is_err());
    }
}
