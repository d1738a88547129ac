//! In-memory rack state: the JSON shapes of convox `pkg/structs` (field names exactly as the
//! real rack serialises them) plus the bookkeeping tests inspect (exec log, uploads, restarts).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The app every fresh mock rack starts with.
pub const SEED_APP: &str = "myapp";
/// Its current (and only) release; env `A=1`, non-empty manifest.
pub const SEED_RELEASE: &str = "RSEEDMYAPP1";
/// The build behind [`SEED_RELEASE`].
pub const SEED_BUILD: &str = "BSEEDMYAPP1";
/// The version `GET /system` reports. It must sort above `20180708231844` as a string, or the
/// CLI falls back to the v2 build and env routes.
pub const DEFAULT_VERSION: &str = "3.19.0";

/// The manifest of seeded and mock-built releases. The CLI refuses nothing here, but the rack
/// refuses to promote a release whose manifest is empty, so it must not be.
pub const DEFAULT_MANIFEST: &str = "\
services:
  web:
    build: .
    port: 3000
  worker:
    build: .
    command: bin/worker
";

const RACK_DOMAIN: &str = "mock-rack.convox.local";

/// Go's zero `time.Time` as it appears in JSON (`0001-01-01T00:00:00Z`): the real rack sends it
/// for times not yet set (a running build's `ended`), and the CLI parses it.
pub fn go_zero_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `GET /system`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct System {
    pub count: i64,
    pub domain: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    pub provider: String,
    #[serde(rename = "rack-domain")]
    pub rack_domain: String,
    #[serde(rename = "router-internal")]
    pub router_internal: String,
    pub region: String,
    pub status: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct App {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generation: String,
    pub locked: bool,
    pub name: String,
    pub release: String,
    pub router: String,
    pub status: String,
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Release {
    pub id: String,
    pub app: String,
    pub build: String,
    pub env: String,
    pub manifest: String,
    pub description: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Build {
    pub id: String,
    pub app: String,
    pub description: String,
    pub entrypoint: String,
    #[serde(rename = "git-sha")]
    pub git_sha: String,
    pub logs: String,
    pub manifest: String,
    pub process: String,
    pub release: String,
    pub reason: String,
    pub repository: String,
    pub status: String,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Process {
    pub id: String,
    pub app: String,
    pub command: String,
    pub cpu: f64,
    pub gpu: i64,
    pub host: String,
    pub image: String,
    pub instance: String,
    pub memory: f64,
    /// The service name (the CLI shows it as SERVICE).
    pub name: String,
    pub ports: Vec<String>,
    pub release: String,
    pub started: DateTime<Utc>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServicePort {
    pub balancer: i64,
    pub certificate: String,
    pub container: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Service {
    pub count: i64,
    pub cpu: i64,
    pub domain: String,
    pub gpu: i64,
    #[serde(rename = "gpu-vendor")]
    pub gpu_vendor: String,
    pub memory: i64,
    pub name: String,
    pub nlb: Vec<serde_json::Value>,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Instance {
    pub agent: bool,
    pub cpu: f64,
    #[serde(rename = "cpu-capacity")]
    pub cpu_capacity: f64,
    #[serde(rename = "cpu-allocatable")]
    pub cpu_allocatable: f64,
    #[serde(rename = "gpu-capacity")]
    pub gpu_capacity: i64,
    #[serde(rename = "gpu-allocatable")]
    pub gpu_allocatable: i64,
    pub id: String,
    pub memory: f64,
    #[serde(rename = "memory-capacity")]
    pub memory_capacity: f64,
    #[serde(rename = "memory-allocatable")]
    pub memory_allocatable: f64,
    #[serde(rename = "private-ip")]
    pub private_ip: String,
    pub processes: i64,
    #[serde(rename = "public-ip")]
    pub public_ip: String,
    pub status: String,
    pub started: DateTime<Utc>,
}

/// One object upload (`POST /apps/{app}/objects/{key}`), measured while it streamed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadInfo {
    pub app: String,
    pub key: String,
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the body.
    pub sha256: String,
}

/// One finished exec session (`convox exec`, or the attached half of `convox run`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExecRecord {
    pub app: String,
    pub pid: String,
    /// The `Command` header, verbatim.
    pub command: String,
    /// `Tty` header (`None` when absent; the rack then defaults to a tty).
    pub tty: Option<bool>,
    /// `Entrypoint` header (sent by `convox run`, not by `convox exec`).
    pub entrypoint: Option<bool>,
    /// What the client sent on stdin, as far as the command read it (only `cat` reads).
    pub stdin: String,
    pub exit_code: i32,
}

/// Everything the mock knows about one app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppRecord {
    pub app: App,
    /// Oldest first (the API lists newest first).
    pub releases: Vec<Release>,
    /// Oldest first.
    pub builds: Vec<Build>,
    pub services: Vec<Service>,
    pub processes: Vec<Process>,
    /// Stored objects by key.
    pub objects: BTreeMap<String, UploadInfo>,
    /// Service names passed to `POST /apps/{app}/services/{s}/restart`, in order.
    pub restarts: Vec<String>,
    /// Process ids removed by `DELETE /apps/{app}/processes/{pid}`, in order.
    pub stopped: Vec<String>,
}

/// The whole rack. [`crate::mock_rack::MockRack::state`] hands out clones of this.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RackState {
    pub system: System,
    pub apps: BTreeMap<String, AppRecord>,
    pub instances: Vec<Instance>,
    pub system_processes: Vec<Process>,
    pub execs: Vec<ExecRecord>,
    /// Every object upload in arrival order, including ones later deleted with their app.
    pub uploads: Vec<UploadInfo>,
    /// The form of every `PUT /system` (rack update, params set, rack scale), in order.
    pub system_updates: Vec<BTreeMap<String, String>>,
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Release and build ids look like the rack's: a letter then 10 upper-case letters.
pub fn new_id(prefix: char) -> String {
    format!("{prefix}{}", random_from(UPPER, 10))
}

/// Process ids look like Kubernetes pod names: `<service>-<10 chars>-<5 chars>`.
pub fn new_pid(service: &str) -> String {
    format!(
        "{service}-{}-{}",
        random_from(LOWER_ALNUM, 10),
        random_from(LOWER_ALNUM, 5)
    )
}

/// The rack's `Request-Id`: 12 random characters.
pub fn new_request_id() -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random_from(ALNUM, 12)
}

/// convox `common.EnvDiff`: ` add:K` for new keys, ` change:K`, ` remove:K`, each sorted.
pub fn env_diff(old: &str, new: &str) -> String {
    let a = parse_env(old);
    let b = parse_env(new);
    let adds = b
        .keys()
        .filter(|k| !a.contains_key(*k))
        .map(|k| format!("add:{k}"));
    let changes = b
        .iter()
        .filter(|(k, v)| a.get(*k).is_some_and(|old| old != *v))
        .map(|(k, _)| format!("change:{k}"));
    let removes = a
        .keys()
        .filter(|k| !b.contains_key(*k))
        .map(|k| format!("remove:{k}"));
    adds.chain(changes)
        .chain(removes)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses a release's `env` text (`K=V` lines) into a sorted map.
pub fn parse_env(env: &str) -> BTreeMap<String, String> {
    env.lines()
        .filter_map(|line| {
            let line = line.trim_end_matches('\r');
            let (k, v) = line.split_once('=')?;
            (!k.trim().is_empty()).then(|| (k.trim().to_string(), v.to_string()))
        })
        .collect()
}

impl App {
    pub fn new(name: &str, generation: &str) -> App {
        App {
            generation: generation.to_string(),
            locked: false,
            name: name.to_string(),
            release: String::new(),
            router: format!("router.{RACK_DOMAIN}"),
            status: "running".to_string(),
            parameters: BTreeMap::new(),
        }
    }
}

impl Process {
    pub fn new(app: &str, service: &str, release: &str, command: &str) -> Process {
        Process {
            id: new_pid(service),
            app: app.to_string(),
            command: command.to_string(),
            cpu: 0.0,
            gpu: 0,
            host: "10.0.1.23".to_string(),
            image: format!("registry.{RACK_DOMAIN}/{app}:{service}.{release}"),
            instance: "ip-10-0-1-23.ec2.internal".to_string(),
            memory: 0.0,
            name: service.to_string(),
            ports: if service == "web" {
                vec!["3000".to_string()]
            } else {
                Vec::new()
            },
            release: release.to_string(),
            started: Utc::now(),
            status: "running".to_string(),
            service: Some(service.to_string()),
        }
    }
}

impl Service {
    pub fn new(app: &str, name: &str, count: i64) -> Service {
        let web = name == "web";
        Service {
            count,
            cpu: 250,
            domain: if web {
                format!("web.{app}.{RACK_DOMAIN}")
            } else {
                String::new()
            },
            gpu: 0,
            gpu_vendor: String::new(),
            memory: 512,
            name: name.to_string(),
            nlb: Vec::new(),
            ports: if web {
                vec![ServicePort {
                    balancer: 443,
                    certificate: String::new(),
                    container: 3000,
                }]
            } else {
                Vec::new()
            },
        }
    }
}

impl AppRecord {
    pub fn new(app: App) -> AppRecord {
        AppRecord {
            app,
            releases: Vec::new(),
            builds: Vec::new(),
            services: Vec::new(),
            processes: Vec::new(),
            objects: BTreeMap::new(),
            restarts: Vec::new(),
            stopped: Vec::new(),
        }
    }

    pub fn release(&self, id: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.id == id)
    }

    pub fn latest_release(&self) -> Option<&Release> {
        self.releases.last()
    }

    pub fn build_mut(&mut self, id: &str) -> Option<&mut Build> {
        self.builds.iter_mut().find(|b| b.id == id)
    }

    /// The manifest new releases inherit: the current release's, else the default.
    pub fn current_manifest(&self) -> String {
        self.release(&self.app.release)
            .or_else(|| self.latest_release())
            .map(|r| r.manifest.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| DEFAULT_MANIFEST.to_string())
    }

    /// Creates a release the way the rack's `ReleaseCreate` does: build and env are forked from
    /// `parent` (or the latest release); a build brings its manifest and description; a new env
    /// sets the description to the change (`env add:B change:A remove:C`); an explicit
    /// description wins. Fails only for an unknown parent release or build.
    pub fn create_release(
        &mut self,
        parent: Option<&str>,
        build: Option<String>,
        env: Option<String>,
        description: Option<String>,
    ) -> Result<Release, String> {
        let base = match parent {
            Some(id) => Some(
                self.release(id)
                    .cloned()
                    .ok_or_else(|| format!("release not found: {id}"))?,
            ),
            None => self.latest_release().cloned(),
        };
        let mut release = Release {
            id: new_id('R'),
            app: self.app.name.clone(),
            build: base.as_ref().map(|r| r.build.clone()).unwrap_or_default(),
            env: base.as_ref().map(|r| r.env.clone()).unwrap_or_default(),
            manifest: String::new(),
            description: String::new(),
            created: Utc::now(),
        };
        if let Some(b) = build {
            release.build = b;
        }
        if !release.build.is_empty() {
            let b = self
                .builds
                .iter()
                .find(|b| b.id == release.build)
                .ok_or_else(|| format!("build not found: {}", release.build))?;
            release.description = b.description.clone();
            release.manifest = b.manifest.clone();
        }
        if let Some(env) = env {
            let diff = env_diff(&release.env, &env);
            if !diff.is_empty() {
                release.description = format!("env {diff}");
            }
            release.env = env;
        }
        if let Some(d) = description {
            release.description = d;
        }
        self.releases.push(release.clone());
        Ok(release)
    }

    /// Marks a build complete and gives it a release, once. Called when its log stream has been
    /// sent, or lazily when it is read a while after it started.
    pub fn complete_build(&mut self, id: &str) {
        let Some(build) = self.builds.iter().find(|b| b.id == id).cloned() else {
            return;
        };
        if build.status != "created" && build.status != "running" {
            return;
        }
        if !build.reason.is_empty() {
            // The build was doomed from the start (its source object never arrived).
            if let Some(b) = self.build_mut(id) {
                b.status = "failed".to_string();
                b.ended = Utc::now();
            }
            return;
        }
        // The build exists (checked above), so creating its release cannot fail.
        let release = self
            .create_release(None, Some(build.id.clone()), None, None)
            .map(|r| r.id)
            .unwrap_or_default();
        if let Some(b) = self.build_mut(id) {
            b.status = "complete".to_string();
            b.ended = Utc::now();
            b.release = release;
        }
    }

    /// Builds complete by themselves a short while after they start, so API-only clients that
    /// never open the log stream still see them finish.
    pub fn refresh_builds(&mut self, after: Duration) {
        let now = Utc::now();
        let due: Vec<String> = self
            .builds
            .iter()
            .filter(|b| {
                (b.status == "created" || b.status == "running") && now - b.started >= after
            })
            .map(|b| b.id.clone())
            .collect();
        for id in due {
            self.complete_build(&id);
        }
    }

    /// Points the app at `release` and rolls its processes onto it.
    pub fn promote(&mut self, release: &str) {
        self.app.release = release.to_string();
        self.app.status = "running".to_string();
        if self.services.is_empty() {
            // A first deploy of a new app brings up the manifest's services.
            let name = self.app.name.clone();
            self.services = vec![
                Service::new(&name, "web", 1),
                Service::new(&name, "worker", 1),
            ];
        }
        self.reconcile_processes();
        for p in &mut self.processes {
            p.release = release.to_string();
        }
    }

    /// Adds or removes service processes so each service runs `count` of them (one-off `run`
    /// processes are left alone).
    pub fn reconcile_processes(&mut self) {
        let app = self.app.name.clone();
        let release = self.app.release.clone();
        for service in self.services.clone() {
            let mut have: Vec<usize> = self
                .processes
                .iter()
                .enumerate()
                .filter(|(_, p)| p.name == service.name && !is_run_process(p))
                .map(|(i, _)| i)
                .collect();
            let want = usize::try_from(service.count.max(0)).unwrap_or(0);
            while have.len() > want {
                if let Some(i) = have.pop() {
                    self.processes.remove(i);
                }
            }
            for _ in have.len()..want {
                self.processes.push(Process::new(
                    &app,
                    &service.name,
                    &release,
                    &default_command(&service.name),
                ));
            }
        }
    }
}

/// One-off processes started by `convox run` carry `-run-` in their id; scaling and restarts
/// leave them alone.
pub fn is_run_process(p: &Process) -> bool {
    p.id.contains("-run-")
}

/// The id of a one-off process of `service`.
pub fn new_run_pid(service: &str) -> String {
    new_pid(&format!("{service}-run"))
}

fn default_command(service: &str) -> String {
    match service {
        "worker" => "bin/worker".to_string(),
        _ => String::new(),
    }
}

impl RackState {
    /// A fresh rack: one running app (`myapp`) with a release, two services and three
    /// processes, two instances, and a couple of system processes.
    pub fn seed(version: &str) -> RackState {
        let now = Utc::now();
        let created = now - Duration::hours(1);

        let mut myapp = AppRecord::new(App::new(SEED_APP, "2"));
        myapp.builds.push(Build {
            id: SEED_BUILD.to_string(),
            app: SEED_APP.to_string(),
            description: "initial build".to_string(),
            entrypoint: String::new(),
            git_sha: String::new(),
            logs: String::new(),
            manifest: DEFAULT_MANIFEST.to_string(),
            process: String::new(),
            release: SEED_RELEASE.to_string(),
            reason: String::new(),
            repository: format!("registry.{RACK_DOMAIN}/{SEED_APP}"),
            status: "complete".to_string(),
            started: created - Duration::minutes(2),
            ended: created,
        });
        myapp.releases.push(Release {
            id: SEED_RELEASE.to_string(),
            app: SEED_APP.to_string(),
            build: SEED_BUILD.to_string(),
            env: "A=1".to_string(),
            manifest: DEFAULT_MANIFEST.to_string(),
            description: "initial release".to_string(),
            created,
        });
        myapp.app.release = SEED_RELEASE.to_string();
        myapp.services = vec![
            Service::new(SEED_APP, "web", 2),
            Service::new(SEED_APP, "worker", 1),
        ];
        myapp.reconcile_processes();
        for p in &mut myapp.processes {
            p.started = created;
        }

        let mut apps = BTreeMap::new();
        apps.insert(SEED_APP.to_string(), myapp);

        let instance = |id: &str, private_ip: &str, public_ip: &str| Instance {
            agent: true,
            // Used amounts are in the same units as the allocatable ones (the CLI divides).
            cpu: 0.5,
            cpu_capacity: 2.0,
            cpu_allocatable: 1.93,
            gpu_capacity: 0,
            gpu_allocatable: 0,
            id: id.to_string(),
            memory: 2950.0,
            memory_capacity: 8.0 * 1024.0,
            memory_allocatable: 7.2 * 1024.0,
            private_ip: private_ip.to_string(),
            processes: 4,
            public_ip: public_ip.to_string(),
            status: "running".to_string(),
            started: now - Duration::days(3),
        };

        let system_process = |name: &str| {
            let mut p = Process::new("system", name, version, "");
            p.service = None;
            p
        };

        let parameters: BTreeMap<String, String> = [
            ("build_node_enabled", "false"),
            ("high_availability", "true"),
            ("node_disk", "20"),
            ("node_type", "t3.medium"),
            ("region", "us-east-1"),
            ("syslog", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

        RackState {
            system: System {
                count: 2,
                domain: format!("router.{RACK_DOMAIN}"),
                name: "mock-rack".to_string(),
                outputs: BTreeMap::new(),
                parameters,
                provider: "aws".to_string(),
                rack_domain: RACK_DOMAIN.to_string(),
                router_internal: String::new(),
                region: "us-east-1".to_string(),
                status: "running".to_string(),
                kind: String::new(),
                version: version.to_string(),
            },
            apps,
            instances: vec![
                instance("ip-10-0-1-23.ec2.internal", "10.0.1.23", "54.0.0.23"),
                instance("ip-10-0-2-47.ec2.internal", "10.0.2.47", "54.0.0.47"),
            ],
            system_processes: vec![system_process("api"), system_process("router")],
            execs: Vec::new(),
            uploads: Vec::new(),
            system_updates: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_consistent() {
        let s = RackState::seed(DEFAULT_VERSION);
        let app = &s.apps[SEED_APP];
        assert_eq!(app.app.release, SEED_RELEASE);
        assert_eq!(app.processes.len(), 3);
        assert!(app.processes.iter().all(|p| p.release == SEED_RELEASE));
        assert!(!app
            .release(SEED_RELEASE)
            .map(|r| r.manifest.clone())
            .unwrap_or_default()
            .is_empty());
        // The CLI compares versions as strings against the last v2 timestamp version.
        assert!(s.system.version.as_str() > "20180708231844");
    }

    #[test]
    fn zero_time_serialises_like_go() {
        let v = serde_json::to_value(go_zero_time()).unwrap();
        assert_eq!(v, serde_json::json!("0001-01-01T00:00:00Z"));
    }

    #[test]
    fn env_parsing_ignores_blank_keys() {
        let env = parse_env("A=1\nB=x=y\n\n=z\n");
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(env.get("B").map(String::as_str), Some("x=y"));
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn completing_a_build_creates_a_release_once() {
        let mut s = RackState::seed(DEFAULT_VERSION);
        let app = s.apps.get_mut(SEED_APP).unwrap();
        let mut b = app.builds[0].clone();
        b.id = "BNEW".into();
        b.status = "running".into();
        b.release.clear();
        app.builds.push(b);
        app.complete_build("BNEW");
        app.complete_build("BNEW");
        assert_eq!(app.releases.len(), 2);
        let r = app.latest_release().unwrap();
        assert_eq!(r.build, "BNEW");
        assert_eq!(r.description, "initial build");
        assert_eq!(r.env, "A=1");
        assert!(!r.manifest.is_empty());
    }

    #[test]
    fn env_releases_describe_the_change() {
        assert_eq!(env_diff("A=1\nB=2", "A=2\nC=3"), "add:C change:A remove:B");
        let mut s = RackState::seed(DEFAULT_VERSION);
        let app = s.apps.get_mut(SEED_APP).unwrap();
        let r = app
            .create_release(None, None, Some("A=1\nB=2".into()), None)
            .unwrap();
        assert_eq!(r.description, "env add:B");
        assert_eq!(r.build, SEED_BUILD);
        assert_eq!(r.manifest, DEFAULT_MANIFEST);
        assert!(app.create_release(Some("RNOPE"), None, None, None).is_err());
        assert!(app
            .create_release(None, Some("BNOPE".into()), None, None)
            .is_err());
    }

    #[test]
    fn scaling_reconciles_processes() {
        let mut s = RackState::seed(DEFAULT_VERSION);
        let app = s.apps.get_mut(SEED_APP).unwrap();
        app.services[0].count = 4;
        app.reconcile_processes();
        assert_eq!(app.processes.iter().filter(|p| p.name == "web").count(), 4);
        app.services[0].count = 1;
        app.reconcile_processes();
        assert_eq!(app.processes.iter().filter(|p| p.name == "web").count(), 1);
    }
}
