//! The erasure layout of the whole tenant, as the server decides it at start-up from every pool
//! together. Facts from minio/minio at the commit the real node runs (7aac2a2c5b7c):
//!
//! - each pool's set size (`getSetIndexes`, cmd/endpoint-ellipses.go) is the largest of 2..=16 that
//!   divides the pool's drive count and is symmetric with its leftmost ellipsis (the servers, or the
//!   drives of a one-server pool); `ERASURE_SET_DRIVE_COUNT` imposes a size instead, without the
//!   symmetry rule, for every pool;
//! - one parity serves every pool (`newErasureServerPools`, cmd/erasure-server-pool.go): the
//!   `STORAGE_CLASS_STANDARD` setting (`EC:<n>`) or, without it, the default for the first pool's
//!   set size (`DefaultParityBlocks`); every pool's sets must then hold it (at most half the set),
//!   or no server starts: `parity 4 should be less than or equal to 2 <- (4, 4), for pool(2nd)`;
//! - the storage-class settings are checked against the first pool's set size at start-up
//!   (`storageclass.LookupConfig`), and a tenant of several pools needs ellipses in every pool's
//!   endpoints, so no pool of several may be a single drive.
//!
//! Every server restarts with the new arguments together, so one admitted pool that breaks these
//! rules stops all of them, the pools holding data included.

use k8s_openapi::api::core::v1::EnvVar;

use super::super::violation::{Violation, Violations};
use crate::api::tenant::{Pool, Tenant};

/// Erasure-set sizes the server accepts (drives per set).
const SET_SIZES: std::ops::RangeInclusive<u32> = 2..=16;

/// The server settings that shape the layout, without their `S3_`/`MINIO_` prefix.
const STANDARD: &str = "STORAGE_CLASS_STANDARD";
const RRS: &str = "STORAGE_CLASS_RRS";
const DRIVE_COUNT: &str = "ERASURE_SET_DRIVE_COUNT";

/// The parity of the reduced-redundancy class when nothing sets it.
const DEFAULT_RRS_PARITY: u32 = 1;

/// Where a server setting was read, for messages and field paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `spec.env[i]`.
    SpecEnv(usize),
    /// The `config.env` of the configuration Secret (seen by the reconciler only). Its values are
    /// never quoted: the file holds the credentials.
    ConfigurationSecret,
}

/// One setting the servers will read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// As written, e.g. `S3_STORAGE_CLASS_STANDARD`.
    pub name: String,
    pub value: String,
    pub from: Source,
}

impl Setting {
    /// Where a violation about this setting points.
    fn field(&self) -> String {
        match self.from {
            Source::SpecEnv(i) => format!("spec.env[{i}].value"),
            Source::ConfigurationSecret => "spec.configuration.name".to_owned(),
        }
    }

    /// The setting as a message names it.
    fn described(&self) -> String {
        match self.from {
            Source::SpecEnv(i) => format!("{}={} in spec.env[{i}]", self.name, self.value),
            Source::ConfigurationSecret => {
                format!("{} in the configuration Secret's config.env", self.name)
            }
        }
    }
}

/// The layout settings a tenant's servers read, the later source winning as the server applies
/// them: the container's environment (`MINIO_<X>` over `S3_<X>`, the last entry of a name), then
/// the configuration file, which the server loads over its environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerSettings {
    pub standard: Option<Setting>,
    pub rrs: Option<Setting>,
    pub drive_count: Option<Setting>,
}

impl ServerSettings {
    /// What `spec.env` sets (values from references cannot be seen and are left out).
    pub fn of_env(env: &[EnvVar]) -> ServerSettings {
        let mut settings = ServerSettings::default();
        for var in server_variables(env, &[]) {
            settings.set(var.key, var.name, var.value, var.from);
        }
        settings
    }

    /// Adds what the configuration Secret's `config.env` sets, which wins.
    pub fn with_configuration(mut self, entries: &[(String, String)]) -> ServerSettings {
        for var in server_variables(&[], entries) {
            self.set(var.key, var.name, var.value, var.from);
        }
        self
    }

    fn set(&mut self, key: &str, name: &str, value: &str, from: Source) {
        let slot = match key {
            STANDARD => &mut self.standard,
            RRS => &mut self.rrs,
            DRIVE_COUNT => &mut self.drive_count,
            _ => return,
        };
        // The server treats an empty value as unset.
        *slot = (!value.trim().is_empty()).then(|| Setting {
            name: name.to_owned(),
            value: value.trim().to_owned(),
            from,
        });
    }
}

/// One server variable as written: `S3_<key>` or `MINIO_<key>`.
pub struct ServerVariable<'a> {
    /// The name without its prefix, e.g. `STORAGE_CLASS_STANDARD`.
    pub key: &'a str,
    pub name: &'a str,
    pub value: &'a str,
    pub from: Source,
}

/// The server variables of `env` (values from references cannot be seen and are left out), then
/// of the configuration file's `entries`, in the order the server applies them, so the last of a
/// key wins: in each, `S3_<X>` before `MINIO_<X>`, which the server reads over it; the file after
/// the container's environment. (The server takes an empty value as unset.)
pub fn server_variables<'a>(
    env: &'a [EnvVar],
    entries: &'a [(String, String)],
) -> impl Iterator<Item = ServerVariable<'a>> {
    let from_env = ["S3_", "MINIO_"].into_iter().flat_map(move |prefix| {
        env.iter().enumerate().filter_map(move |(i, var)| {
            Some(ServerVariable {
                key: var.name.strip_prefix(prefix)?,
                name: &var.name,
                value: var.value.as_deref()?,
                from: Source::SpecEnv(i),
            })
        })
    });
    let from_file = ["S3_", "MINIO_"].into_iter().flat_map(move |prefix| {
        entries.iter().filter_map(move |(name, value)| {
            Some(ServerVariable {
                key: name.strip_prefix(prefix)?,
                name,
                value,
                from: Source::ConfigurationSecret,
            })
        })
    });
    from_env.chain(from_file)
}

/// The value the server takes for `key` (e.g. `ROOT_USER`) from `env` and `entries`: the last
/// of [`server_variables`], trimmed; an empty value is unset.
pub fn server_value<'a>(
    env: &'a [EnvVar],
    entries: &'a [(String, String)],
    key: &str,
) -> Option<&'a str> {
    server_variables(env, entries)
        .filter(|v| v.key == key)
        .last()
        .map(|v| v.value.trim())
        .filter(|v| !v.is_empty())
}

/// A storage-class value `EC:<parity>`, as the server parses it.
fn parse_parity(value: &str) -> Result<u32, String> {
    let parts: Vec<&str> = value.split(':').collect();
    match parts.as_slice() {
        ["EC", n] => n.parse::<u32>().map_err(|_| {
            "must be EC:<parity> with a whole number of 0 or more, as in EC:2".to_owned()
        }),
        [_, _] => Err("must be EC:<parity>: EC is the only scheme the server knows".to_owned()),
        _ => Err("must be EC:<parity>, as in EC:2".to_owned()),
    }
}

/// The parity the server gives sets of `set_size` drives by default (`DefaultParityBlocks`).
pub fn default_parity(set_size: u32) -> u32 {
    match set_size {
        1 => 0,
        2 | 3 => 1,
        4 | 5 => 2,
        6 | 7 => 3,
        _ => 4,
    }
}

/// The largest parity sets of `set_size` drives hold: half of them.
fn max_parity(set_size: u32) -> u32 {
    set_size / 2
}

/// The drives per erasure set the server picks for a pool of `servers` x `volumes`, with
/// `ERASURE_SET_DRIVE_COUNT` at `fixed` when set; `None` when it cannot split the pool.
pub fn set_size(servers: i32, volumes: i32, fixed: Option<u32>) -> Option<u32> {
    let (Ok(servers), Ok(volumes)) = (u32::try_from(servers), u32::try_from(volumes)) else {
        return None;
    };
    let total = servers.checked_mul(volumes)?;
    if total < 2 {
        return None;
    }
    if let Some(size) = fixed {
        return (SET_SIZES.contains(&size) && total % size == 0).then_some(size);
    }
    // The symmetry rule looks at the leftmost ellipsis of the endpoint: the servers, or the drives
    // of a pool with one server.
    let spread = if servers > 1 { servers } else { volumes };
    SET_SIZES.rev().find(|&size| {
        total % size == 0
            && if spread > size {
                spread % size == 0
            } else {
                size % spread == 0
            }
    })
}

/// A pool as its sets are sized, or why they cannot be.
struct Sized<'a> {
    index: usize,
    pool: &'a Pool,
    set_size: u32,
}

/// Judges the layout of every pool together: the tenant's parity must fit every pool's sets, and
/// the storage-class settings must be ones the server accepts for the first pool.
pub fn validate_layout(tenant: &Tenant, settings: &ServerSettings, out: &mut Violations) {
    let pools = &tenant.spec.pools;
    // A tenant of one drive runs without erasure coding; no parity applies.
    if pools.len() == 1 && drives(&pools[0]) == 1 {
        return;
    }
    if pools.len() > 1 {
        single_drive_pools(pools, out);
    }
    let Ok(fixed) = fixed_set_size(settings, out) else {
        return;
    };
    let sized = sized_pools(pools, fixed, settings, out);
    let (Ok(standard), Ok(rrs)) = (
        parsed(settings.standard.as_ref(), out),
        parsed(settings.rrs.as_ref(), out),
    ) else {
        return;
    };
    let mut parity: Option<(u32, String)> = None;
    for pool in &sized {
        // The server fixes the parity at the first pool, or the first whose parity is not 0.
        let (tenant_parity, why) = match &parity {
            Some((p, why)) if *p > 0 => (*p, why.clone()),
            _ => {
                if !storage_classes_fit(pool, standard, rrs, settings, out) {
                    return;
                }
                let chosen = match (standard, &settings.standard) {
                    (Some(p), Some(s)) => (p, s.described()),
                    _ => (
                        default_parity(pool.set_size),
                        format!(
                            "the server's default for the erasure sets of {} drives of pool {:?}",
                            pool.set_size, pool.pool.name
                        ),
                    ),
                };
                parity = Some(chosen.clone());
                chosen
            }
        };
        if tenant_parity > max_parity(pool.set_size) {
            out.invalid(
                format!("spec.pools[{}]", pool.index),
                layout(pool.pool),
                parity_message(pool, tenant_parity, &why, fixed, settings),
            );
        }
    }
}

/// The Go operators' own floor for small pools (2 or 3 servers need 4 drives), kept so a tenant
/// valid here is valid there.
pub fn below_go_floor(servers: i32, volumes: i32) -> bool {
    matches!(servers, 2 | 3) && i64::from(servers) * i64::from(volumes) < 4
}

fn drives(pool: &Pool) -> i64 {
    i64::from(pool.servers) * i64::from(pool.volumes_per_server)
}

/// A tenant of several pools needs ellipses in every pool's endpoints: none may be one drive.
fn single_drive_pools(pools: &[Pool], out: &mut Violations) {
    for (i, pool) in pools.iter().enumerate() {
        if drives(pool) == 1 {
            out.invalid(
                format!("spec.pools[{i}]"),
                "servers: 1, volumesPerServer: 1",
                format!(
                    "pool {:?} is a single drive, and a tenant of several pools needs at least 2 drives in each (the server runs a single drive without erasure coding and cannot add pools to it): give it 2 or more volumes or servers",
                    pool.name
                ),
            );
        }
    }
}

/// The set size `ERASURE_SET_DRIVE_COUNT` imposes, if any (0 is the server's "not set").
fn fixed_set_size(settings: &ServerSettings, out: &mut Violations) -> Result<Option<u32>, ()> {
    let Some(s) = &settings.drive_count else {
        return Ok(None);
    };
    match s.value.parse::<u32>() {
        Ok(0) => Ok(None),
        Ok(n) if SET_SIZES.contains(&n) => Ok(Some(n)),
        _ => {
            out.invalid(
                s.field(),
                value_of(s),
                format!(
                    "{} must be a number of drives per erasure set from 2 to 16, or the servers would not start",
                    s.name
                ),
            );
            Err(())
        }
    }
}

/// Every pool whose sets the server can size, with their size. A pool it cannot size, or that the
/// pool rules already refuse, is left out: without a fixed size, the pool's own rule says why
/// (one cause, one message).
fn sized_pools<'a>(
    pools: &'a [Pool],
    fixed: Option<u32>,
    settings: &ServerSettings,
    out: &mut Violations,
) -> Vec<Sized<'a>> {
    let mut sized = Vec::new();
    for (index, pool) in pools.iter().enumerate() {
        if pool.servers < 1
            || pool.volumes_per_server < 1
            || drives(pool) < 2
            || below_go_floor(pool.servers, pool.volumes_per_server)
        {
            continue;
        }
        match set_size(pool.servers, pool.volumes_per_server, fixed) {
            Some(set_size) => sized.push(Sized {
                index,
                pool,
                set_size,
            }),
            None => {
                if let (Some(n), Some(s)) = (fixed, &settings.drive_count) {
                    out.invalid(
                        format!("spec.pools[{index}]"),
                        layout(pool),
                        format!(
                            "{} asks for erasure sets of {n} drives, and pool {:?} has {} drives, which sets of {n} do not divide: the servers would not start",
                            s.described(),
                            pool.name,
                            drives(pool)
                        ),
                    );
                }
            }
        }
    }
    sized
}

/// The layout rules once more with what the configuration Secret's `config.env` sets, which the
/// servers read over `spec.env` and which only the reconciler sees: a Secret edited to ask for a
/// parity some pool cannot hold is refused before it reaches the servers.
pub fn validate_with_configuration(
    tenant: &Tenant,
    entries: &[(String, String)],
) -> Vec<Violation> {
    let settings = ServerSettings::of_env(&tenant.spec.env).with_configuration(entries);
    let mut out = Violations::default();
    validate_layout(tenant, &settings, &mut out);
    out.into_vec()
}

/// Checks the storage-class settings against the pool the server fixes the parity at, as its
/// start-up does; false when they would stop it.
fn storage_classes_fit(
    pool: &Sized,
    standard: Option<u32>,
    rrs: Option<u32>,
    settings: &ServerSettings,
    out: &mut Violations,
) -> bool {
    let n = pool.set_size;
    let mut fit = true;
    // The server compares the classes with the set size only for sets of more than 2 drives.
    if n > 2 {
        for (parity, setting, class) in [
            (standard, &settings.standard, "standard"),
            (rrs, &settings.rrs, "reduced-redundancy"),
        ] {
            if let (Some(p), Some(s)) = (parity, setting)
                && p > max_parity(n)
            {
                out.invalid(
                    s.field(),
                    value_of(s),
                    format!(
                        "{} asks for a {class} parity of {p}, and the erasure sets of {n} drives of pool {:?} hold at most {}: the servers would not start; use EC:{} or less",
                        s.described(),
                        pool.pool.name,
                        max_parity(n),
                        max_parity(n)
                    ),
                );
                fit = false;
            }
        }
    }
    let rrs_parity = rrs.unwrap_or(DEFAULT_RRS_PARITY);
    if let (Some(p), Some(s)) = (standard, &settings.standard)
        && fit
        && p > 0
        && rrs_parity > 0
        && p < rrs_parity
    {
        out.invalid(
            s.field(),
            value_of(s),
            format!(
                "{} asks for a standard parity of {p}, below the reduced-redundancy parity of {rrs_parity}: the server refuses a standard class weaker than the reduced one and would not start",
                s.described()
            ),
        );
        fit = false;
    }
    fit
}

/// The parity of a storage-class setting, `None` when unset; a violation when it does not parse.
fn parsed(setting: Option<&Setting>, out: &mut Violations) -> Result<Option<u32>, ()> {
    let Some(s) = setting else { return Ok(None) };
    parse_parity(&s.value).map(Some).map_err(|why| {
        out.invalid(
            s.field(),
            value_of(s),
            format!(
                "{} {why}: the servers would not start",
                match s.from {
                    Source::SpecEnv(_) => s.name.clone(),
                    Source::ConfigurationSecret => s.described(),
                }
            ),
        );
    })
}

/// The value a violation quotes: never one from the configuration Secret.
fn value_of(s: &Setting) -> String {
    match s.from {
        Source::SpecEnv(_) => s.value.clone(),
        Source::ConfigurationSecret => "(from the configuration Secret)".to_owned(),
    }
}

fn layout(pool: &Pool) -> String {
    format!(
        "servers: {}, volumesPerServer: {}",
        pool.servers, pool.volumes_per_server
    )
}

fn parity_message(
    pool: &Sized,
    parity: u32,
    why: &str,
    fixed: Option<u32>,
    settings: &ServerSettings,
) -> String {
    let p = pool.pool;
    let mut message = format!(
        "the tenant's erasure parity is {parity} ({why}), and the erasure sets of {} drives of pool {:?} hold at most {}: every server would refuse to start, those of the other pools included",
        pool.set_size,
        p.name,
        max_parity(pool.set_size)
    );
    let working = working_layouts(p.servers, p.volumes_per_server, parity, fixed);
    if !working.is_empty() {
        message.push_str(&format!(
            "; layouts that would work (sets of {} or more drives): {}",
            2 * parity,
            working.join(", ")
        ));
    }
    if settings.standard.is_some() {
        message.push_str(&format!(
            "; or a storage class of EC:{} or less",
            max_parity(pool.set_size)
        ));
    }
    message
}

/// Layouts close to `servers` x `volumes` whose sets hold `parity`: the same servers with the
/// fewest volumes that do, and the same volumes with the fewest servers that do.
fn working_layouts(servers: i32, volumes: i32, parity: u32, fixed: Option<u32>) -> Vec<String> {
    let holds = |s: i32, v: i32| set_size(s, v, fixed).is_some_and(|n| parity <= max_parity(n));
    let named = |s: i32, v: i32| {
        let plural = |n: i32, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        format!("{} x {}", plural(s, "server"), plural(v, "volume"))
    };
    let mut found = Vec::new();
    if let Some(v) = (volumes..=volumes + 32).find(|&v| holds(servers, v)) {
        found.push(named(servers, v));
    }
    if let Some(s) = (servers..=servers + 32).find(|&s| holds(s, volumes)) {
        let candidate = named(s, volumes);
        if !found.contains(&candidate) {
            found.push(candidate);
        }
    }
    found
}

/// The parity the servers will use for every pool: the storage class, or the default for the first
/// pool's set size (the first pool whose parity is not 0). `None` when the layout is invalid.
pub fn tenant_parity(tenant: &Tenant, settings: &ServerSettings) -> Option<u32> {
    let fixed = fixed_drive_count(settings);
    if let Some(s) = &settings.standard {
        return parse_parity(&s.value).ok();
    }
    tenant
        .spec
        .pools
        .iter()
        .filter_map(|p| set_size(p.servers, p.volumes_per_server, fixed))
        .map(default_parity)
        .find(|p| *p > 0)
}

/// `ERASURE_SET_DRIVE_COUNT` as the server reads it (0 or unset: not fixed).
fn fixed_drive_count(settings: &ServerSettings) -> Option<u32> {
    settings
        .drive_count
        .as_ref()
        .and_then(|d| d.value.parse::<u32>().ok())
        .filter(|n| *n > 0)
}

/// How many of pool `index`'s servers may be down at once with every erasure set keeping write
/// quorum, and (for the first pool, whose first set's servers hold every lock) lock quorum.
/// `None` when the layout is invalid or the tenant is a single drive.
pub fn servers_the_pool_can_lose(
    tenant: &Tenant,
    index: usize,
    settings: &ServerSettings,
) -> Option<u32> {
    let pool = tenant.spec.pools.get(index)?;
    let servers = u32::try_from(pool.servers).ok()?;
    let set = set_size(
        pool.servers,
        pool.volumes_per_server,
        fixed_drive_count(settings),
    )?;
    let parity = tenant_parity(tenant, settings)?;
    let data = set.checked_sub(parity)?;
    let write_quorum = data + u32::from(data == parity);
    // Sets take drives from the servers in turn: a set of at least as many drives as servers
    // holds set/servers drives of each, a smaller one one drive of `set` servers.
    let drives_per_server = (set / servers).max(1);
    let mut tolerated = set.saturating_sub(write_quorum) / drives_per_server;
    if index == 0 {
        let lockers = set.min(servers);
        let tolerance = lockers / 2;
        let quorum = lockers - tolerance + u32::from(lockers - tolerance == tolerance);
        tolerated = tolerated.min(lockers - quorum);
    }
    Some(tolerated)
}

/// On UPDATE: `ERASURE_SET_DRIVE_COUNT` may not change the set size of a pool that exists, whose
/// drives are formatted with it (the server refuses: "already formatted with N drives per erasure
/// set").
pub fn validate_set_sizes_kept(
    old: &Tenant,
    new: &Tenant,
    before: &ServerSettings,
    after: &ServerSettings,
    out: &mut Violations,
) {
    let fixed = |s: &ServerSettings| {
        s.drive_count
            .as_ref()
            .and_then(|d| d.value.parse::<u32>().ok())
            .filter(|n| *n > 0)
    };
    let (was, now) = (fixed(before), fixed(after));
    if was == now {
        return;
    }
    for (i, pool) in new.spec.pools.iter().enumerate() {
        let Some(old_pool) = old.spec.pools.iter().find(|p| p.name == pool.name) else {
            continue;
        };
        let size = |p: &Pool, f| set_size(p.servers, p.volumes_per_server, f);
        if let (Some(a), Some(b)) = (size(old_pool, was), size(pool, now))
            && a != b
        {
            let field = after
                .drive_count
                .as_ref()
                .or(before.drive_count.as_ref())
                .map_or_else(|| format!("spec.pools[{i}]"), Setting::field);
            out.forbidden(
                field,
                format!(
                    "this change of the erasure set drive count would give pool {:?} sets of {b} drives, and its drives are formatted in sets of {a}: the servers would refuse to start; a pool's set size cannot change",
                    pool.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_sizes_as_the_server_picks_them() {
        for ((s, v), size) in [
            ((4, 4), Some(16)),
            ((2, 2), Some(4)),
            ((3, 2), Some(6)),
            ((4, 8), Some(16)),
            ((6, 4), Some(12)),
            ((5, 3), Some(15)),
            ((10, 3), Some(10)),
            ((9, 2), Some(9)),
            ((32, 1), Some(16)),
            ((4, 1), Some(4)),
            ((4, 2), Some(8)),
            ((1, 4), Some(4)),
            ((1, 6), Some(6)),
            ((17, 2), None),
            ((17, 1), None),
            ((1, 1), None),
        ] {
            assert_eq!(set_size(s, v, None), size, "{s}x{v}");
        }
        assert_eq!(set_size(4, 2, Some(4)), Some(4), "a fixed size wins");
        assert_eq!(set_size(3, 1, Some(2)), None, "2 does not divide 3");
    }

    #[test]
    fn default_parity_by_set_size() {
        let got: Vec<u32> = (1..=16).map(default_parity).collect();
        assert_eq!(got, [0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4]);
    }

    #[test]
    fn storage_class_values() {
        assert_eq!(parse_parity("EC:2"), Ok(2));
        assert_eq!(parse_parity("EC:0"), Ok(0));
        assert!(parse_parity("ec:2").is_err());
        assert!(parse_parity("EC:-1").is_err());
        assert!(parse_parity("EC:2:3").is_err());
        assert!(parse_parity("2").is_err());
    }

    #[test]
    fn settings_prefer_minio_names_then_the_configuration_file() {
        let env = |n: &str, v: &str| EnvVar {
            name: n.into(),
            value: Some(v.into()),
            value_from: None,
        };
        let s = ServerSettings::of_env(&[
            env("MINIO_STORAGE_CLASS_STANDARD", "EC:3"),
            env("S3_STORAGE_CLASS_STANDARD", "EC:2"),
        ]);
        assert_eq!(s.standard.as_ref().unwrap().value, "EC:3");
        assert_eq!(s.standard.as_ref().unwrap().from, Source::SpecEnv(0));
        let s = s.with_configuration(&[("S3_STORAGE_CLASS_STANDARD".into(), "EC:1".into())]);
        assert_eq!(s.standard.unwrap().from, Source::ConfigurationSecret);
    }

    #[test]
    fn servers_a_pool_can_lose_keep_write_and_lock_quorum() {
        let tenant = |pools: &[(i32, i32)]| -> Tenant {
            let pools: Vec<serde_json::Value> = pools
                .iter()
                .enumerate()
                .map(|(i, (s, v))| serde_json::json!({"name": format!("p{i}"), "servers": s, "volumesPerServer": v}))
                .collect();
            serde_json::from_value(
                serde_json::json!({"apiVersion": "minio.min.io/v2", "kind": "Tenant",
                "metadata": {"name": "t"}, "spec": {"pools": pools}}),
            )
            .unwrap()
        };
        let none = ServerSettings::default();
        let lose = |pools: &[(i32, i32)], i| servers_the_pool_can_lose(&tenant(pools), i, &none);
        assert_eq!(
            lose(&[(4, 2)], 0),
            Some(1),
            "sets of 8, parity 4, 2 drives a server"
        );
        assert_eq!(lose(&[(4, 1)], 0), Some(1), "sets of 4, parity 2");
        assert_eq!(lose(&[(8, 1)], 0), Some(3), "sets of 8 over 8 servers");
        assert_eq!(lose(&[(2, 2)], 0), Some(0), "2 servers: none can go");
        assert_eq!(lose(&[(16, 1)], 0), Some(4), "parity 4 of 16");
        assert_eq!(
            lose(&[(4, 2), (16, 1)], 1),
            Some(4),
            "no lock limit past the first pool"
        );
        let ec2 = ServerSettings::of_env(&[EnvVar {
            name: "S3_STORAGE_CLASS_STANDARD".into(),
            value: Some("EC:2".into()),
            value_from: None,
        }]);
        assert_eq!(
            servers_the_pool_can_lose(&tenant(&[(8, 1)]), 0, &ec2),
            Some(2),
            "parity 2 of 8: 2 drives, 2 servers"
        );
    }

    #[test]
    fn working_layouts_name_the_nearest_that_hold_the_parity() {
        assert_eq!(
            working_layouts(4, 1, 4, None),
            ["4 servers x 2 volumes", "8 servers x 1 volume"]
        );
        assert_eq!(
            working_layouts(2, 2, 4, None),
            ["2 servers x 4 volumes", "4 servers x 2 volumes"]
        );
    }
}
